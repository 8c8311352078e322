"""`python -m pricealert.evaluator`: run the evaluator until SIGTERM."""

from pricealert.common.runner import run_worker_process
from pricealert.evaluator.settings import get_settings
from pricealert.evaluator.worker import SERVICE, run

if __name__ == "__main__":
    run_worker_process(SERVICE, get_settings(), run)
