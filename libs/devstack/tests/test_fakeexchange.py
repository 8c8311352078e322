"""The fake exchange speaks Binance's WebSocket and REST protocol to a real client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from pricealert.devstack.fakeexchange import FakeExchange, fmt8, synthetic_symbols


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    async with FakeExchange() as fake:
        yield fake


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> Any:
    import asyncio

    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def request(ws: ClientConnection, payload: dict[str, Any]) -> Any:
    await ws.send(json.dumps(payload))
    return await recv_json(ws)


def test_fmt8_writes_eight_decimals() -> None:
    assert fmt8(Decimal("65000")) == "65000.00000000"
    assert fmt8("0.000000015") == "0.00000002"


async def test_subscribe_on_ws_gets_raw_trade_payload(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/ws") as ws:
        assert await request(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}) == {
            "result": None,
            "id": 1,
        }
        assert exchange.subscriptions() == {"btcusdt@trade"}
        trade_id = await exchange.play_trade("BTCUSDT", "70123.45", "0.5", trade_time=1_700_000_000_000)
        data = await recv_json(ws)
    assert set(data) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"}
    assert data["e"] == "trade" and data["s"] == "BTCUSDT" and data["t"] == trade_id
    assert data["p"] == "70123.45000000" and data["q"] == "0.50000000" and data["T"] == 1_700_000_000_000
    assert isinstance(data["E"], int) and data["M"] is True


async def test_stream_path_wraps_payloads_and_subscribes_from_query(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/stream?streams=btcusdt@trade/ethusdt@aggTrade") as ws:
        await exchange.wait_for(lambda: len(exchange.open_sessions()) == 1)
        first = await exchange.play_trade("BTCUSDT", 1)
        await exchange.play_trade("ETHUSDT", 2)
        trade = await recv_json(ws)
        agg = await recv_json(ws)
    assert trade["stream"] == "btcusdt@trade" and trade["data"]["t"] == first
    assert agg["stream"] == "ethusdt@aggTrade" and agg["data"]["e"] == "aggTrade"
    assert agg["data"]["f"] == agg["data"]["l"] and "a" in agg["data"]


async def test_raw_stream_path_subscribes_without_wrapper(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/ws/solusdt@trade") as ws:
        await exchange.wait_for(lambda: exchange.subscriptions() == {"solusdt@trade"})
        await exchange.play_trade("SOLUSDT", "151.5")
        data = await recv_json(ws)
    assert data["s"] == "SOLUSDT" and data["p"] == "151.50000000"


async def test_unsubscribe_list_and_properties(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/ws") as ws:
        await request(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "ethusdt@trade"], "id": 1})
        assert await request(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 2}) == {
            "result": None,
            "id": 2,
        }
        assert await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3}) == {"result": ["ethusdt@trade"], "id": 3}
        assert await request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 4}) == {
            "result": False,
            "id": 4,
        }
        assert await request(ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 5}) == {
            "result": None,
            "id": 5,
        }
        await exchange.play_trade("ETHUSDT", 3000)
        assert (await recv_json(ws))["stream"] == "ethusdt@trade"
        assert exchange.subscribers("btcusdt@trade") == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"method": "SUBSCRIBE", "params": ["btcusdt@nonsense"], "id": 1}, 2),
        ({"method": "PUBLISH", "params": [], "id": 1}, 2),
        ({"params": [], "id": 1}, 2),
        ({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 1}, 1),
        ({"method": "GET_PROPERTY", "params": ["colour"], "id": 1}, 0),
    ],
)
async def test_bad_requests_get_binance_errors(exchange: FakeExchange, payload: dict[str, Any], code: int) -> None:
    async with connect(exchange.ws_url + "/ws") as ws:
        reply = await request(ws, payload)
    assert reply["error"]["code"] == code and reply["id"] == 1 and reply["error"]["msg"]


async def test_invalid_json_and_bad_id_get_errors(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/ws") as ws:
        await ws.send("{nope")
        assert (await recv_json(ws))["error"]["code"] == 3
        reply = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": "not-a-valid-id-!"})
        assert reply["error"]["code"] == 2 and "request ID" in reply["error"]["msg"]


async def test_unknown_and_uppercase_symbols_are_accepted_silently(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/ws") as ws:
        reply = await request(ws, {"method": "SUBSCRIBE", "params": ["BTCUSDT@trade", "nosuchusdt@trade"], "id": 7})
        assert reply == {"result": None, "id": 7}
        assert await exchange.play_trade("BTCUSDT", 1) > 0
        await exchange.play_trade("ETHUSDT", 1)
        await request(ws, {"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": 8})
        await exchange.play_trade("ETHUSDT", 2)
        assert (await recv_json(ws))["s"] == "ETHUSDT"


async def test_recorder_keeps_client_messages_and_attempts(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/ws") as ws:
        await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
    await exchange.wait_for(lambda: not exchange.open_sessions())
    (session,) = exchange.sessions
    assert json.loads(session.messages()[0]) == {"method": "LIST_SUBSCRIPTIONS", "id": 1}
    assert session.received[0].at > 0 and session.close_code == 1000
    assert [a.status for a in exchange.attempts] == [101]


async def test_trade_ids_increase_per_symbol(exchange: FakeExchange) -> None:
    ids = [await exchange.play_trade("BTCUSDT", 1) for _ in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3


async def test_random_walk_trades_within_price_filter(exchange: FakeExchange) -> None:
    async with connect(exchange.ws_url + "/stream?streams=btcusdt@trade/xrpusdt@trade") as ws:
        await exchange.wait_for(lambda: len(exchange.subscriptions()) == 2)
        exchange.start_random_walk(200, ["BTCUSDT", "XRPUSDT"], seed=1)
        frames = [await recv_json(ws) for _ in range(20)]
        await exchange.stop_random_walks()
    for frame in frames:
        spec = exchange.symbols[frame["data"]["s"]]
        price = Decimal(frame["data"]["p"])
        assert spec.min_price <= price <= spec.max_price and price % spec.tick_size == 0
    assert {f["data"]["s"] for f in frames} == {"BTCUSDT", "XRPUSDT"}


async def test_rest_exchange_info_filters_by_status(exchange: FakeExchange) -> None:
    async with httpx.AsyncClient(base_url=exchange.rest_url) as client:
        everything = (await client.get("/api/v3/exchangeInfo")).json()
        trading = (await client.get("/api/v3/exchangeInfo", params={"symbolStatus": "TRADING"})).json()
        one = (await client.get("/api/v3/exchangeInfo", params={"symbol": "ETHUSDT"})).json()
    assert {s["status"] for s in trading["symbols"]} == {"TRADING"}
    assert len(everything["symbols"]) > len(trading["symbols"])
    btc = next(s for s in trading["symbols"] if s["symbol"] == "BTCUSDT")
    price_filter = next(f for f in btc["filters"] if f["filterType"] == "PRICE_FILTER")
    assert price_filter == {
        "filterType": "PRICE_FILTER",
        "minPrice": "0.01000000",
        "maxPrice": "1000000.00000000",
        "tickSize": "0.01000000",
    }
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]


async def test_rest_ticker_price_time_and_ping(exchange: FakeExchange) -> None:
    await exchange.play_trade("BNBUSDT", "612.34")
    async with httpx.AsyncClient(base_url=exchange.rest_url) as client:
        price = await client.get("/api/v3/ticker/price", params={"symbol": "BNBUSDT"})
        unknown = await client.get("/api/v3/ticker/price", params={"symbol": "NOPE"})
        every = (await client.get("/api/v3/ticker/price")).json()
        server_time = (await client.get("/api/v3/time")).json()
        ping = await client.get("/api/v3/ping")
    assert price.json() == {"symbol": "BNBUSDT", "price": "612.34000000"}
    assert unknown.status_code == 400 and unknown.json() == {"code": -1121, "msg": "Invalid symbol."}
    assert {row["symbol"] for row in every} == set(exchange.symbols)
    assert server_time["serverTime"] > 1_600_000_000_000
    assert ping.status_code == 200 and ping.json() == {}


async def test_synthetic_symbols_are_listed_and_trade() -> None:
    async with FakeExchange(synthetic_symbols(50)) as fake:
        async with httpx.AsyncClient(base_url=fake.rest_url) as client:
            info = (await client.get("/api/v3/exchangeInfo", params={"symbolStatus": "TRADING"})).json()
        assert len(info["symbols"]) == 50
        async with connect(fake.ws_url + "/ws/s0042usdt@trade") as ws:
            await fake.wait_for(lambda: bool(fake.subscriptions()))
            await fake.play_trade("S0042USDT", "12.5")
            assert (await recv_json(ws))["s"] == "S0042USDT"


async def test_unknown_path_is_refused(exchange: FakeExchange) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as caught:
        async with connect(exchange.ws_url + "/nope"):
            pass
    assert caught.value.response.status_code == 404
    assert [a.status for a in exchange.attempts] == [404]
