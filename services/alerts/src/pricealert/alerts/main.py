"""The alerts API application and its lifespan (engine, Redis, background tasks)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pricealert.alerts.api.fastpath import FastRoutes
from pricealert.alerts.api.routes import alerts
from pricealert.alerts.catalog import SymbolCatalog
from pricealert.alerts.consumers import build_consumers
from pricealert.alerts.database import make_engine
from pricealert.alerts.deps import AppState
from pricealert.alerts.expiry import ExpirySweeper
from pricealert.alerts.metrics import install_metrics, worker_exiting
from pricealert.alerts.outbox import OutboxRelay
from pricealert.alerts.pgstore import PgStore
from pricealert.alerts.service import AlertService
from pricealert.alerts.settings import AlertsSettings, get_settings
from pricealert.alerts.workers import Leader, Loop
from pricealert.common.api import install_common
from pricealert.common.db import is_sqlite, session_factory, upgrade_database, wait_for_database
from pricealert.common.redisconn import connect
from pricealert.common.tokens import KeyRing

log = structlog.get_logger()

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_alerts"
MIGRATION_LOCK_KEY = 0x70A1E28
READY_TIMEOUT_S = 2.0
STOP_TIMEOUT_S = 10.0


async def _supervise(name: str, loop: Loop, stop: asyncio.Event) -> None:
    """Run a background loop until `stop`, restarting it with backoff if it crashes."""
    delay = 0.5
    while not stop.is_set():
        try:
            await loop(stop)
        except Exception:
            log.exception("alerts.task.crashed", task=name, retry_in=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 10.0)


def build_state(settings: AlertsSettings) -> AppState:
    """Engine, Redis, key ring, catalog, relay and service for one process (nothing is connected yet)."""
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
    sessions = session_factory(engine)
    store = None if is_sqlite(settings.database_url) else PgStore(settings.database_url, max_size=settings.pg_pool_size)
    redis = connect(settings.redis_url)
    catalog = SymbolCatalog(redis, refresh_s=settings.catalog_refresh_s, min_refresh_s=settings.catalog_min_refresh_s)
    relay = OutboxRelay(
        sessions,
        redis,
        poll_s=settings.relay_poll_s,
        batch_size=settings.relay_batch_size,
        coalesce_s=settings.relay_coalesce_s,
        store=store,
    )
    service = AlertService(
        sessions,
        catalog,
        max_active_per_user=settings.max_active_per_user,
        on_commit=relay.notify if settings.relay_enabled else lambda: None,
        store=store,
    )
    return AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis,
        keys=KeyRing(redis, settings.token_root_public_key_file),
        catalog=catalog,
        relay=relay,
        service=service,
        store=store,
    )


@asynccontextmanager
async def _migration_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """On Postgres, one process at a time migrates (workers and replicas start together)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})


async def prepare_database(state: AppState) -> None:
    """Wait until the database answers, bring its schema to head, then open the asyncpg pool (Postgres)."""
    await wait_for_database(state.engine)
    async with _migration_lock(state.engine):
        await asyncio.to_thread(upgrade_database, state.settings.database_url, MIGRATIONS, VERSION_TABLE)
    if state.store is not None:
        await state.store.start()


async def migrate(settings: AlertsSettings) -> None:
    """Bring the schema to head and return (run before spawning workers, which then find nothing to do)."""
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        await wait_for_database(engine)
        async with _migration_lock(engine):
            await asyncio.to_thread(upgrade_database, settings.database_url, MIGRATIONS, VERSION_TABLE)
    finally:
        await engine.dispose()


async def close_state(state: AppState) -> None:
    """Close every connection the state holds."""
    if state.store is not None:
        await state.store.close()
    await state.redis.aclose()
    await state.engine.dispose()


def create_app(settings: AlertsSettings | None = None, *, leader_lock: Path | None = None) -> FastAPI:
    """The alerts API; `settings` defaults to the environment's.

    With `leader_lock` (one of several worker processes), the consumers and the expiry sweeper run only
    in the worker holding that lock; the relay runs in every worker.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or get_settings()
        state = build_state(cfg)
        await prepare_database(state)
        app.state.alerts = state
        stop = asyncio.Event()
        loops: list[tuple[str, Loop]] = []
        if cfg.relay_enabled:
            loops.append(("outbox_relay", state.relay.run))
        singletons: list[tuple[str, Loop]] = []
        if cfg.consumers_enabled:
            singletons += [
                (f"consumer:{c.options.stream}", c.run) for c in build_consumers(state.redis, state.service, cfg)
            ]
        if cfg.expiry_enabled:
            singletons.append(("expiry", ExpirySweeper(state.service, interval_s=cfg.expiry_sweep_s).run))
        if leader_lock is not None and singletons:
            loops.append(("leader", Leader(leader_lock, singletons, _supervise).run))
        else:
            loops += singletons
        tasks = [asyncio.create_task(_supervise(name, loop, stop), name=name) for name, loop in loops]
        log.info("alerts.started", tasks=[name for name, _ in loops])
        try:
            yield
        finally:
            stop.set()
            state.relay.notify()
            _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S) if tasks else (set(), set())
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await close_state(state)
            worker_exiting()
            log.info("alerts.stopped")

    app = FastAPI(
        title="pricealert alerts",
        version="0.1.0",
        lifespan=lifespan,
        # Only opentelemetry-api is installed: FastAPI's telemetry could never report, yet it checks per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        description="Create, list, inspect and delete price alerts. Every call needs an access token "
        "from the auth service (`Authorization: Bearer <token>`).",
    )

    async def ready() -> bool:
        state: AppState | None = getattr(app.state, "alerts", None)
        if state is None:
            return False
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                async with state.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                await state.redis.ping()
        except Exception as exc:  # any failure means "not ready", never a 500
            log.warning("alerts.not_ready", error=f"{type(exc).__name__}: {exc}")
            return False
        return True

    # Added first, so innermost: the request id, the body cap and the metrics wrap the fast path too.
    app.add_middleware(FastRoutes, api=app)
    install_common(app, ready=ready)
    install_metrics(app)

    app.include_router(alerts.router)
    return app
