"""The alerts service's engine: SQLite write transactions take the write lock up front; aborted ones run again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import structlog
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pricealert.alerts.metrics import TRANSACTION_RETRIES
from pricealert.common.db import create_engine, is_sqlite
from pricealert.common.settings import Pooler

log = structlog.get_logger()
T = TypeVar("T")

_BEGIN_MODE = "pricealert_sqlite_begin"
# serialization_failure, deadlock_detected: Postgres aborted the transaction, and running it again is safe.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
WRITE_ATTEMPTS = 3
for _sqlstate in sorted(RETRYABLE_SQLSTATES):
    TRANSACTION_RETRIES.labels(_sqlstate)  # 0 from the first scrape, not absent


def make_engine(
    url: str, *, pool_size: int = 20, max_overflow: int = 10, pooler: Pooler = "none", statement_timeout_s: float = 0.0
) -> AsyncEngine:
    """An async engine for `url`; on SQLite, `write_session` transactions begin IMMEDIATE."""
    # The socket check instead of a ping per checkout: a ping is three round trips with asyncpg.
    engine = create_engine(
        url,
        application_name="pricealert-alerts",
        pool_size=pool_size,
        max_overflow=max_overflow,
        liveness="socket",
        pooler=pooler,
        statement_timeout_s=statement_timeout_s,
    )
    if is_sqlite(url):
        # A deferred transaction that reads and then writes fails with SQLITE_BUSY when another
        # writer committed in between; taking the lock at BEGIN makes writers queue instead.
        @event.listens_for(engine.sync_engine, "connect")
        def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Connection) -> None:
            mode = connection.get_execution_options().get(_BEGIN_MODE, "DEFERRED")
            connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


@asynccontextmanager
async def write_session(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose transaction writes: committed on success, rolled back on error."""
    async with factory() as session:
        await session.connection(execution_options={_BEGIN_MODE: "IMMEDIATE"})
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


@asynccontextmanager
async def read_session(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for reads only."""
    async with factory() as session:
        yield session


async def run_write(
    factory: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    attempts: int = WRITE_ATTEMPTS,
) -> T:
    """`work` in a write transaction, run again when Postgres aborts it as a deadlock or serialization victim."""
    for attempt in range(1, attempts + 1):
        try:
            async with write_session(factory) as session:
                return await work(session)
        except DBAPIError as exc:
            sqlstate = getattr(exc.orig, "sqlstate", None)
            if sqlstate not in RETRYABLE_SQLSTATES or attempt == attempts:
                raise
            TRANSACTION_RETRIES.labels(sqlstate).inc()
            log.warning("alerts.transaction.retried", sqlstate=sqlstate, attempt=attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")
