"""`python -m pricealert.evaluator`: run the evaluator until SIGTERM."""

from pricealert.common.runner import run_worker_process
from pricealert.evaluator.handlers import SERVICE, run
from pricealert.evaluator.settings import get_settings

if __name__ == "__main__":
    run_worker_process(SERVICE, get_settings(), run)
