"""Async SQLAlchemy engines (Postgres or SQLite), per-request sessions and Alembic upgrades."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import asyncpg
import structlog
from sqlalchemy import DateTime, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator

from pricealert.common.settings import Pooler

log = structlog.get_logger()
# A statement prepared on one server connection is unknown to the next (and its name may be taken there):
# no cached, named statements. asyncpg then prepares each statement unnamed, in the same exchange as its run.
NO_STATEMENT_CACHE: dict[str, Any] = {"statement_cache_size": 0}

CONNECT_TIMEOUT_S = 5.0
# Connecting failed because the server is away or refuses clients for now (not a bug in the request).
UNREACHABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on Postgres and SQLite (which drops the offset); naive values are UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        # SQLite compares datetimes as text, so every stored value must share one format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def async_url(url: str) -> str:
    """Normalise a database URL to its async driver (asyncpg for Postgres, aiosqlite for SQLite)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    """Whether `url` names a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str,
    *,
    application_name: str,
    pool_size: int = 10,
    max_overflow: int = 10,
    liveness: Literal["ping", "socket"] = "ping",
    pooler: Pooler = "none",
    statement_timeout_s: float = 0.0,
) -> AsyncEngine:
    """An async engine; SQLite gets WAL and a busy timeout so several processes can share it.

    Postgres connections are checked at checkout: "ping" runs a round trip (three, with asyncpg) on every
    checkout; "socket" only refuses connections whose socket the server already closed (restart,
    terminated backend), which costs nothing on the hot path. Behind a transaction pooler
    (`pooler="pgbouncer"`) neither asyncpg nor SQLAlchemy's dialect caches prepared statements.
    `statement_timeout_s` (0: none) bounds every statement on Postgres, its lock waits included.
    """
    full_url = async_url(url)
    if is_sqlite(full_url):
        engine = create_async_engine(full_url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]  # SQLAlchemy's event hook is untyped (DBAPI connection)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    connect_args: dict[str, Any] = {
        "server_settings": server_settings(application_name, statement_timeout_s, pooler),
        "timeout": CONNECT_TIMEOUT_S,  # asyncpg's default is 60 s: a server that never answers would hold requests
    }
    if pooler == "pgbouncer":
        connect_args |= {**NO_STATEMENT_CACHE, "prepared_statement_cache_size": 0}
    engine = create_async_engine(
        full_url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=liveness == "ping",
        connect_args=connect_args,
    )

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        # asyncpg's own errors on connect (refused, starting up, too many clients) reach SQLAlchemy unwrapped,
        # and would answer 500: raised as the driver's OperationalError they are "database away" like any other.
        try:
            return dialect.loaded_dbapi.connect(*cargs, **cparams)
        except UNREACHABLE as exc:
            raise dialect.loaded_dbapi.OperationalError(f"{type(exc).__name__}: {exc}") from exc

    if liveness == "socket":

        @event.listens_for(engine.sync_engine, "checkout")
        def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            if dbapi_connection.driver_connection.is_closed():
                # The pool discards this connection and checks out (or opens) another one.
                raise DisconnectionError("connection closed by the server")

    return engine


def server_settings(application_name: str, statement_timeout_s: float, pooler: Pooler) -> dict[str, str]:
    """The session settings a Postgres connection starts with: its name, and its statement timeout if any."""
    settings = {"application_name": application_name}
    # PgBouncer refuses startup parameters it does not know: behind it, set the timeout on the role instead.
    if statement_timeout_s > 0 and pooler == "none":
        settings["statement_timeout"] = str(round(statement_timeout_s * 1000))
    return settings


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def upgrade_database(url: str, script_location: Path, version_table: str) -> None:
    """Run `alembic upgrade head` for one service's migrations (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    config.attributes["version_table"] = version_table
    command.upgrade(config, "head")


async def wait_for_database(engine: AsyncEngine, *, max_delay: float = 5.0) -> None:
    """Connect until the database answers, backing off."""
    delay = 0.1
    while True:
        try:
            async with engine.connect():
                return
        except (OSError, ConnectionError) as exc:
            log.warning("database.unavailable", error=str(exc), retry_in=round(delay, 2))
        except Exception as exc:  # asyncpg raises its own errors for "starting up" and refusals
            log.warning("database.unavailable", error=f"{type(exc).__name__}: {exc}", retry_in=round(delay, 2))
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)
