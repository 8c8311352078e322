"""Postgres faults shared by the fault tests and the chaos scenarios: kill -9, terminated backends, a held lock."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import asyncpg

from pricealert.devstack.servers import PostgresServer


def kill_postgres(server: PostgresServer) -> None:
    """kill -9 of the postmaster and every process it started: the crash that flushes nothing."""
    pid = int((server.directory / "data" / "postmaster.pid").read_text().split()[0])
    children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for victim in (pid, *children):
        with suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


async def terminate_app_backends(server: PostgresServer) -> int:
    """pg_terminate_backend of every connection the services hold; returns how many there were."""
    admin = await asyncpg.connect(server.url())
    try:
        return int(
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                "WHERE application_name LIKE 'pricealert-%'"
            )
        )
    finally:
        await admin.close()


@asynccontextmanager
async def table_locked(database_url: str, table: str) -> AsyncIterator[None]:
    """ACCESS EXCLUSIVE on `table`, held by another session for as long as the block runs."""
    holder = await asyncpg.connect(database_url)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        await transaction.rollback()
    finally:
        await holder.close()


async def durable_database(server: PostgresServer, name: str) -> str:
    """Create database `name` whose commits survive a kill -9 (the throwaway server runs synchronous_commit off)."""
    url = await asyncio.to_thread(server.create_database, name)
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
    finally:
        await admin.close()
    return url
