"""Run the ingest worker: `python -m pricealert.ingest`."""

from __future__ import annotations

import asyncio

from pricealert.common.logging import configure_logging
from pricealert.common.runner import run_until_signalled
from pricealert.ingest.main import worker
from pricealert.ingest.settings import get_settings


def main() -> None:
    """Configure logging from the settings and run until SIGTERM/SIGINT."""
    settings = get_settings()
    configure_logging(service="ingest", level=settings.log_level, json=settings.log_json)
    asyncio.run(run_until_signalled(worker))


if __name__ == "__main__":
    main()
