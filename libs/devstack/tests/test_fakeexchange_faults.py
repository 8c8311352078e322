"""The fake exchange's limits and fault modes, seen from a real client."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from pricealert.devstack.fakeexchange import FakeExchange


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    async with FakeExchange() as fake:
        yield fake


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def closed_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    return ws.close_code


async def test_more_than_five_messages_a_second_closes_with_1008(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/ws") as ws:
        for i in range(6):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        replies = 0
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
                replies += 1
        assert ws.close_code == 1008 and ws.close_reason == "Too many requests"
    assert replies <= 5


async def test_five_messages_a_second_are_fine() -> None:
    async with FakeExchange() as fake, connect(fake.ws_url + "/ws") as ws:
        for i in range(5):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        assert [(await recv_json(ws))["id"] for _ in range(5)] == list(range(5))


async def test_stream_cap_closes_the_connection() -> None:
    async with FakeExchange(max_streams=3) as fake, connect(fake.ws_url + "/ws") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["a@trade", "b@trade", "c@trade"], "id": 1}))
        assert await recv_json(ws) == {"result": None, "id": 1}
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["d@trade"], "id": 2}))
        assert await closed_code(ws) == 1008


async def test_stream_cap_refuses_long_stream_urls() -> None:
    async with FakeExchange(max_streams=2) as fake:
        with pytest.raises(InvalidStatus):
            async with connect(fake.ws_url + "/stream?streams=a@trade/b@trade/c@trade"):
                pass


async def test_abrupt_drop_closes_without_close_frame(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/ws") as ws:
        await exchange.wait_for(lambda: len(exchange.open_sessions()) == 1)
        assert exchange.drop_connections() == 1
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1006


async def test_silent_mode_keeps_connection_open_but_sends_nothing(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/ws/btcusdt@trade") as ws:
        await exchange.wait_for(lambda: bool(exchange.subscriptions()))
        exchange.go_silent()
        await exchange.play_trade("BTCUSDT", 1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.3)
        await ws.ping()  # the transport is alive: pings are still answered
        exchange.go_silent(False)
        await exchange.play_trade("BTCUSDT", 2)
        assert (await recv_json(ws))["p"] == "2.00000000"


async def test_garbage_frames_are_delivered(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/ws") as ws:
        await exchange.wait_for(lambda: len(exchange.open_sessions()) == 1)
        assert exchange.send_garbage(["not json", b"\x00\x01"]) == 1
        assert await asyncio.wait_for(ws.recv(), 5) == "not json"
        assert await asyncio.wait_for(ws.recv(), 5) == b"\x00\x01"


async def test_server_shutdown_is_announced_then_closes(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/stream") as ws:
        await exchange.wait_for(lambda: len(exchange.open_sessions()) == 1)
        shutdown = asyncio.create_task(exchange.server_shutdown(grace_s=0.1))
        event = await recv_json(ws)
        assert event["stream"] == "!serverShutdown" and event["data"]["e"] == "serverShutdown"
        assert await closed_code(ws) == 1001
        assert await shutdown == 1


async def test_connection_lifetime_is_enforced() -> None:
    async with FakeExchange(max_lifetime_s=0.2) as fake, connect(fake.ws_url + "/ws") as ws:
        assert await closed_code(ws) == 1000
        assert fake.sessions[0].close_reason == "Connection lifetime exceeded"


async def test_missing_pong_closes_the_connection() -> None:
    async with FakeExchange(ping_interval=0.1, ping_timeout=0.2) as fake:
        reader, writer = await asyncio.open_connection(fake.host, fake.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {fake.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        status = await reader.readline()
        assert b"101" in status
        # Never answer the server's pings: it must give up and close.
        data = await asyncio.wait_for(reader.read(), 5)
        assert b"keepalive ping timeout" in data
        writer.close()
        await fake.wait_for(lambda: not fake.open_sessions())


async def test_pings_are_answered_by_a_live_client_and_keep_it_open() -> None:
    fake = FakeExchange(ping_interval=0.05, ping_timeout=0.5)
    async with fake, connect(fake.ws_url + "/ws/btcusdt@trade") as ws:
        await asyncio.sleep(0.3)
        await fake.play_trade("BTCUSDT", 1)
        assert (await recv_json(ws))["s"] == "BTCUSDT"


async def test_refused_handshakes_are_recorded(exchange: FakeExchange) -> None:
    exchange.refuse_connections(1, status=503)
    with pytest.raises(InvalidStatus) as caught:
        async with connect(exchange.ws_url + "/ws"):
            pass
    assert caught.value.response.status_code == 503
    async with connect(exchange.ws_url + "/ws"):
        pass
    assert [a.status for a in exchange.attempts] == [503, 101]


async def test_rest_429_carries_retry_after(exchange: FakeExchange) -> None:
    exchange.fail_rest(1, status=429, retry_after_s=7)
    async with httpx.AsyncClient(base_url=exchange.rest_url) as client:
        limited = await client.get("/api/v3/exchangeInfo")
        ok = await client.get("/api/v3/exchangeInfo")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json()["code"] == -1003
    assert ok.status_code == 200
    assert len(exchange.rest_faults.requests) == 2


async def test_refused_handshake_can_carry_retry_after(exchange: FakeExchange) -> None:
    exchange.refuse_connections(1, status=429, retry_after_s=3)
    with pytest.raises(InvalidStatus) as caught:
        async with connect(exchange.ws_url + "/ws"):
            pass
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "3"


async def test_slow_sends_delay_every_frame(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/ws/btcusdt@trade") as ws:
        await exchange.wait_for(lambda: bool(exchange.subscriptions()))
        exchange.slow_down(0.2)
        await exchange.play_trade("BTCUSDT", 1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.05)
        assert (await recv_json(ws))["p"] == "1.00000000"
