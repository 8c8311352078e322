"""Postgres faults shared by the fault tests and the chaos scenarios: kill -9, terminated backends, a held lock."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from pricealert.common.tasks import cancel_and_wait
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


_SSL_REQUEST = 80877103
ADMIN_SHUTDOWN = "57P01"


def _error_response(sqlstate: str, message: str) -> bytes:
    """A FATAL ErrorResponse message of the Postgres wire protocol."""
    fields = b"".join(
        kind + value.encode() + b"\0"
        for kind, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + (len(body) + 4).to_bytes(4, "big") + body


@asynccontextmanager
async def handshake_cut(sqlstate: str | None) -> AsyncIterator[str]:
    """A loopback server that ends every connection at its startup message, as a Postgres stopping mid-handshake
    does: a bare close (sqlstate None) or a FATAL error first. Yields its URL."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = int.from_bytes(await reader.readexactly(4), "big")
                packet = await reader.readexactly(length - 4)
                if int.from_bytes(packet[:4], "big") != _SSL_REQUEST:
                    break
                writer.write(b"N")  # no TLS: the client goes on in plain text
            if sqlstate is not None:
                writer.write(_error_response(sqlstate, "terminating connection due to administrator command"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"postgresql://pricealert@127.0.0.1:{port}/alerts"
    finally:
        server.close()
        await server.wait_closed()


async def terminate_backend(admin_url: str, pid: int) -> None:
    """pg_terminate_backend of one connection, waiting until it has ended."""
    admin = await asyncpg.connect(admin_url)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", pid), f"no backend {pid}"
    finally:
        await admin.close()


@asynccontextmanager
async def eof_held(url: str) -> AsyncIterator[str]:
    """A loopback proxy to the Postgres of `url` that passes on what the server sends but holds back its close until
    the client writes or closes: the moment a client has read a backend's FATAL farewell but not yet the end of the
    socket, made to last. Yields `url` through the proxy."""
    upstream = make_url(url)

    async def serve(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(upstream.host, upstream.port or 5432)
        server_gone = asyncio.Event()
        client_spoke = asyncio.Event()  # the client wrote since the server's last message

        async def upward() -> None:
            while data := await client_reader.read(65536):
                client_spoke.set()
                if server_gone.is_set():
                    return
                server_writer.write(data)
                await server_writer.drain()

        sending = asyncio.create_task(upward())
        try:
            with suppress(ConnectionError):
                while data := await server_reader.read(65536):
                    client_spoke.clear()
                    client_writer.write(data)
                    await client_writer.drain()
            server_gone.set()
            if not client_spoke.is_set():
                with suppress(ConnectionError):
                    await sending
        finally:
            await cancel_and_wait(sending)
            client_writer.close()
            server_writer.close()

    proxy = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        port = proxy.sockets[0].getsockname()[1]
        yield upstream.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        proxy.close()
        await proxy.wait_closed()
