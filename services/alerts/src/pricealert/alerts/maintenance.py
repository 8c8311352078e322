"""The schema and the outbox as operations: `migrate` brings the database to head, `resync` re-publishes alerts.

Public for the CLI (`pricealert db migrate alerts`, `pricealert alerts resync`) and used by the service's own
processes at start-up.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path

import structlog
from sqlalchemy.engine import make_url

from pricealert.alerts.database import make_engine
from pricealert.alerts.deps import AppState
from pricealert.alerts.outbox import OutboxRelay
from pricealert.alerts.settings import AlertsSettings
from pricealert.alerts.state import build_state, close_state
from pricealert.common.db import is_sqlite, upgrade_database, wait_for_database
from pricealert.common.redisconn import wait_for_redis

log = structlog.get_logger()

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_alerts"


@asynccontextmanager
async def _sqlite_file_lock(url: str) -> AsyncIterator[None]:
    """An exclusive lock on a file beside the database: the API and the worker may start together."""
    database = make_url(url).database
    if not database or database == ":memory:":
        yield
        return
    path = Path(f"{database}.migrate-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


async def migrate(settings: AlertsSettings) -> None:
    """Wait until the database answers and bring its schema to head (a no-op when it is there)."""
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0, pooler=settings.database_pooler)
    try:
        await wait_for_database(engine)
        # One process at a time migrates (API workers, the worker and replicas start together). On Postgres the
        # migration's own transaction takes the lock (common.migrations): a session-level lock taken here would
        # not outlive a transaction behind a transaction pooler.
        url = settings.database_url
        async with _sqlite_file_lock(url) if is_sqlite(url) else nullcontext():
            await asyncio.to_thread(upgrade_database, settings.database_url, MIGRATIONS, VERSION_TABLE)
    finally:
        await engine.dispose()


async def prepare(state: AppState) -> None:
    """Migrate, then connect the store (on Postgres its statements call functions the migrations define)."""
    await migrate(state.settings)
    await state.store.start()


async def agree_on_shards(state: AppState, stop: asyncio.Event | None = None) -> None:
    """Refuse (ShardCountMismatch) to go on with another shard count than Redis records.

    With `stop` (the worker) it waits for Redis first; without (a command) Redis being away fails at once.
    """
    if stop is not None:
        await wait_for_redis(state.redis, stop=stop)
        if stop.is_set():
            return
    await state.gate.agree()


async def resync(settings: AlertsSettings) -> int:
    """Stage alert.created for every active alert, each to its symbol's shard's stream, and relay the outbox until
    it is empty; returns how many."""
    state = build_state(settings)
    try:
        await prepare(state)
        await agree_on_shards(state)
        staged = await state.service.resync()
        relay = OutboxRelay(state.store, state.redis, shards=settings.shards, batch_size=settings.relay_batch_size)
        sent = await relay.drain()
        log.info("alerts.resynced", alerts=staged, events_sent=sent)
        return staged
    finally:
        await close_state(state)
