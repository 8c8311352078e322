"""`python -m pricealert.alerts` serves the API; `python -m pricealert.alerts resync` re-publishes alerts."""

from __future__ import annotations

import argparse
import asyncio
import logging

import structlog
import uvicorn

from pricealert.alerts.main import build_state, create_app, prepare_database
from pricealert.alerts.settings import AlertsSettings, get_settings
from pricealert.common.logging import configure_logging

log = structlog.get_logger()


async def resync(settings: AlertsSettings) -> int:
    """Stage alert.created for every active alert and relay the outbox until it is empty."""
    state = build_state(settings)
    try:
        await prepare_database(state)
        staged = await state.service.resync()
        sent = await state.relay.drain()
        log.info("alerts.resynced", alerts=staged, events_sent=sent)
        return staged
    finally:
        await state.redis.aclose()
        await state.engine.dispose()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the API or a maintenance command."""
    parser = argparse.ArgumentParser(prog="python -m pricealert.alerts")
    parser.add_argument("command", nargs="?", choices=["serve", "resync"], default="serve",
                        help="serve the API (default) or re-publish alert.created for every active alert")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(service="alerts", level=settings.log_level, json=settings.log_json)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.command == "resync":
        asyncio.run(resync(settings))
        return
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                lifespan="on", timeout_graceful_shutdown=15)


if __name__ == "__main__":
    main()
