"""`python -m pricealert.alerts [serve | worker | resync]`: the API, the stream worker, or a resync."""

from __future__ import annotations

import argparse
import asyncio
import logging

from pricealert.alerts import maintenance, serve, worker
from pricealert.alerts.settings import get_settings
from pricealert.common.logging import configure_logging
from pricealert.common.metrics import serve_worker_metrics

COMMANDS = {
    "serve": "serve the API (the default; HTTP only)",
    "worker": "run the stream consumers, the outbox relay and the expiry sweeper",
    "resync": "re-publish alert.created for every active alert, then exit",
}


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the API, the worker or a maintenance command."""
    parser = argparse.ArgumentParser(prog="python -m pricealert.alerts")
    parser.add_argument(
        "command",
        nargs="?",
        choices=list(COMMANDS),
        default="serve",
        help="; ".join(f"{name}: {text}" for name, text in COMMANDS.items()),
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(service="alerts", level=settings.log_level, json=settings.log_json)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.command == "resync":
        asyncio.run(maintenance.resync(settings))
    elif args.command == "worker":
        serve_worker_metrics(settings.metrics_host, settings.metrics_port)
        worker.main(settings)
    else:
        serve.serve(settings)


if __name__ == "__main__":
    main()
