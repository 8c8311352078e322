"""`python -m pricealert.alerts` serves the API; `python -m pricealert.alerts resync` re-publishes alerts."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

import structlog
import uvicorn

from pricealert.alerts.main import build_state, close_state, create_app, migrate, prepare_database
from pricealert.alerts.metrics import shared_by_workers
from pricealert.alerts.settings import AlertsSettings, get_settings
from pricealert.alerts.workers import LEADER_LOCK_ENV, SUPERVISOR_PID_ENV, freeze_heap, leader_lock_path
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
        await close_state(state)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the API or a maintenance command."""
    parser = argparse.ArgumentParser(prog="python -m pricealert.alerts")
    parser.add_argument(
        "command",
        nargs="?",
        choices=["serve", "resync"],
        default="serve",
        help="serve the API (default) or re-publish alert.created for every active alert",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(service="alerts", level=settings.log_level, json=settings.log_json)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.command == "resync":
        asyncio.run(resync(settings))
        return
    # No proxy headers: alerts needs no client address, so no X-Forwarded-For is believed (only auth's is).
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "lifespan": "on",
        "timeout_graceful_shutdown": 15,
        "loop": "uvloop",
        "http": "httptools",
        "proxy_headers": False,
    }
    if settings.workers == 1:
        app = create_app(settings)
        freeze_heap()
        uvicorn.run(app, **options)
        return
    # Migrate once here: workers starting together would race on a fresh database (SQLite has no lock for it).
    asyncio.run(migrate(settings))
    # The workers are spawned: they build their app from the environment, which tells them the lock to elect one.
    os.environ[LEADER_LOCK_ENV] = str(leader_lock_path(settings.host, settings.port))
    os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())
    with shared_by_workers():
        uvicorn.run("pricealert.alerts.workers:worker_app", factory=True, workers=settings.workers, **options)


if __name__ == "__main__":
    main()
