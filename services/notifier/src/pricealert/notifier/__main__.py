"""`python -m pricealert.notifier`: run the notifier until SIGTERM."""

from pricealert.common.runner import run_worker_process
from pricealert.notifier.handlers import SERVICE, run
from pricealert.notifier.settings import get_settings

if __name__ == "__main__":
    run_worker_process(SERVICE, get_settings(), run)
