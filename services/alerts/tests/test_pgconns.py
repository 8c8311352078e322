"""The request paths' connections: bounded, reused, handed to waiters in turn, dropped when in doubt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from pricealert.alerts.pgconns import Connections
from pricealert.common.errors import ServiceUnavailable
from pricealert.testsupport.pgfaults import ADMIN_SHUTDOWN, eof_held, handshake_cut, terminate_backend


@pytest.fixture
async def connections(postgres_url: str) -> AsyncIterator[Connections]:
    """Two connections at most to a fresh database."""
    opened = Connections(postgres_url, max_size=2)
    await opened.start()
    yield opened
    await opened.close()


async def backend(connection: asyncpg.Connection) -> int:
    return int(await connection.fetchval("SELECT pg_backend_pid()"))


async def test_connections_are_reused_and_bounded(connections: Connections) -> None:
    assert connections.size == 1
    first = await connections.run(backend)
    assert await connections.run(backend) == first
    held = [await connections.acquire(), await connections.acquire()]
    assert connections.size == 2
    third = asyncio.create_task(connections.acquire())
    await asyncio.sleep(0.05)
    assert not third.done()
    connections.release(held[0])
    assert await third is held[0]
    for connection in (held[1], held[0]):
        connections.release(connection)
    assert connections.size == 2


async def test_waiters_are_served_in_turn_and_a_cancelled_one_passes_its_turn(connections: Connections) -> None:
    held = [await connections.acquire(), await connections.acquire()]
    first, second = (asyncio.create_task(connections.acquire()) for _ in range(2))
    await asyncio.sleep(0.05)
    connections.release(held[0])
    first.cancel()  # cancelled after the connection was handed to it: the second waiter gets it
    assert await second is held[0]
    with pytest.raises(asyncio.CancelledError):
        await first
    connections.release(held[0])
    connections.release(held[1])
    assert connections.size == 2


async def test_a_connection_in_doubt_is_dropped_and_replaced(connections: Connections) -> None:
    held = [await connections.acquire(), await connections.acquire()]
    pids = [await backend(c) for c in held]
    waiting = asyncio.create_task(connections.run(backend))
    await asyncio.sleep(0.05)
    await held[0].execute("BEGIN")
    connections.release(held[0])  # still inside a transaction: closed, and the waiter opens a new one
    assert held[0].is_closed()
    assert await waiting not in pids
    connections.release(held[1])
    assert connections.size == 2


async def test_a_statement_cancelled_midway_drops_its_connection(connections: Connections) -> None:
    used = await connections.run(backend)
    slow = asyncio.create_task(connections.fetchval("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.2)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert connections.size == 0
    assert await connections.run(backend) != used


async def test_errors_of_a_statement_keep_the_connection(connections: Connections) -> None:
    used = await connections.run(backend)
    with pytest.raises(asyncpg.PostgresError):
        await connections.fetchval("SELECT 1 / 0")
    assert await connections.run(backend) == used


async def test_closed_connections_refuse_and_close_what_comes_back(connections: Connections) -> None:
    held = await connections.acquire()
    await connections.close()
    with pytest.raises(asyncpg.InterfaceError):
        await connections.acquire()
    connections.release(held)
    assert held.is_closed() and connections.size == 0


async def terminate_backends(url: str, pids: list[int]) -> None:
    admin = await asyncpg.connect(url)
    try:
        await admin.execute("SELECT pg_terminate_backend(pid, 5000) FROM unnest($1::int[]) AS pid", pids)
    finally:
        await admin.close()


async def test_idle_connections_the_server_closed_are_dropped_not_handed_out(
    connections: Connections, postgres_url: str
) -> None:
    held = [await connections.acquire(), await connections.acquire()]
    pids = [await backend(c) for c in held]
    for connection in held:
        connections.release(connection)
    await terminate_backends(postgres_url, pids)
    for _ in range(100):  # the loop notices the closed sockets as soon as it runs
        if all(c.is_closed() for c in held):
            break
        await asyncio.sleep(0.02)
    assert await connections.run(backend) not in pids
    assert connections.size == 1


async def test_a_connection_lost_mid_statement_is_database_unavailable(
    connections: Connections, postgres_url: str
) -> None:
    pid = await connections.run(backend)
    slow = asyncio.create_task(connections.fetchval("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.2)
    await terminate_backends(postgres_url, [pid])
    with pytest.raises(ServiceUnavailable) as lost:
        await slow
    assert lost.value.code == "database_unavailable"
    assert connections.size == 0
    assert await connections.run(backend) != pid


async def test_a_database_that_refuses_connections_is_database_unavailable(unused_tcp_port: int) -> None:
    unreachable = Connections(f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/postgres", max_size=1)
    with pytest.raises(ServiceUnavailable) as refused:
        await unreachable.start()
    assert refused.value.code == "database_unavailable"
    assert unreachable.size == 0


async def test_a_waiter_cancelled_as_the_connections_close_is_cancelled(connections: Connections) -> None:
    held = [await connections.acquire(), await connections.acquire()]
    waiting = asyncio.create_task(connections.acquire())
    await asyncio.sleep(0.05)
    closing = asyncio.create_task(connections.close())
    await asyncio.sleep(0)  # close() failed the waiter; it is cancelled before it wakes
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await closing
    for connection in held:
        connections.release(connection)
    assert connections.size == 0


@pytest.mark.parametrize("sqlstate", [None, ADMIN_SHUTDOWN], ids=["closed", "admin-shutdown"])
async def test_a_handshake_cut_short_is_the_database_unavailable(sqlstate: str | None) -> None:
    async with handshake_cut(sqlstate) as url:
        cut = Connections(url, max_size=1)
        with pytest.raises(ServiceUnavailable) as raised:
            await cut.run(backend)
        with pytest.raises(ServiceUnavailable):  # the failed open gave its place back
            await cut.run(backend)
    assert raised.value.code == "database_unavailable"


async def test_a_backend_ended_between_two_statements_is_the_database_unavailable(postgres_url: str) -> None:
    async with eof_held(postgres_url) as url:
        held = Connections(url, max_size=1)
        first = await held.run(backend)
        await terminate_backend(postgres_url, first)
        with pytest.raises(ServiceUnavailable) as raised:
            await held.run(backend)
        assert raised.value.code == "database_unavailable"
        assert await held.run(backend) != first  # the ended connection was dropped
        await held.close()
