"""The chaos TCP proxy (chaos/proxy.py) with real sockets: latency within bounds, order kept, throttle rate, resets
and refusals seen by the client, back to normal on cue."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # chaos is a package at the repository root

from chaos.proxy import ChaosProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[ChaosProxy]:
    """An echo server behind a proxy."""
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    chaos = await ChaosProxy("127.0.0.1", server.sockets[0].getsockname()[1]).start()
    yield chaos
    await chaos.stop()
    server.close()


async def _round_trip(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, data: bytes) -> float:
    started = time.monotonic()
    writer.write(data)
    await writer.drain()
    assert await reader.readexactly(len(data)) == data
    return time.monotonic() - started


async def test_latency_and_jitter_are_added_each_way_within_bounds(proxy: ChaosProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    plain = min([await _round_trip(writer, reader, b"ping") for _ in range(5)])
    proxy.delay(0.05, 0.02)
    delayed = [await _round_trip(writer, reader, b"ping") for _ in range(10)]
    # Two hops, each 30-70 ms; the upper bound leaves room for a busy machine.
    assert min(delayed) >= 0.06
    assert max(delayed) < 0.14 + 0.2
    assert plain < 0.05
    await proxy.normal()
    assert await _round_trip(writer, reader, b"ping") < 0.05
    writer.close()


async def test_order_is_kept_under_jitter(proxy: ChaosProxy) -> None:
    proxy.delay(0.01, 0.01)  # each chunk's own delay varies 0-20 ms: a later chunk may not overtake
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    sent = b""
    for n in range(200):
        piece = f"{n:05d};".encode()
        sent += piece
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.001)
    assert await asyncio.wait_for(reader.readexactly(len(sent)), 10) == sent
    writer.close()


async def test_throttle_holds_the_rate(proxy: ChaosProxy) -> None:
    proxy.throttle(50_000)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    took = await _round_trip(writer, reader, b"x" * 50_000)
    # 50 kB at 50 kB/s each way, pipelined: about 1 s, not the milliseconds of an open line.
    assert 0.8 <= took < 3.0
    await proxy.normal()
    assert await _round_trip(writer, reader, b"x" * 50_000) < 0.5
    writer.close()


async def test_reset_reaches_the_client_and_new_connections_work(proxy: ChaosProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    await _round_trip(writer, reader, b"hello")
    assert proxy.reset_all() == 1
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(10), 5)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    assert await _round_trip(writer, reader, b"again") < 1
    writer.close()


async def test_refused_while_refusing_and_open_connections_carry_on(proxy: ChaosProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    await proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", proxy.port)
    assert await _round_trip(writer, reader, b"still") < 1
    await proxy.normal()
    reader2, writer2 = await asyncio.open_connection("127.0.0.1", proxy.port)
    assert await _round_trip(writer2, reader2, b"back") < 1
    writer.close()
    writer2.close()
