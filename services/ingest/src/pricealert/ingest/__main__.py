"""Run the ingest worker: `python -m pricealert.ingest`."""

from __future__ import annotations

from pricealert.common.runner import run_worker_process
from pricealert.ingest.handlers import SERVICE, run
from pricealert.ingest.settings import get_settings


def main() -> None:
    """Logging, metrics and the worker, until SIGTERM/SIGINT."""
    run_worker_process(SERVICE, get_settings(), run)


if __name__ == "__main__":
    main()
