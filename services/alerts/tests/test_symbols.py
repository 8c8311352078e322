"""GET /symbols and GET /symbols/{symbol}: the catalog searched by name, with current prices; /readyz's exchange."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens, publish_catalog
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import CatalogSymbol
from pricealert.common.prices import EXCHANGE_LINK_TTL_S, ExchangeLink, LinkState, PriceQuote

SEARCHED = [
    CatalogSymbol(symbol=s, min_price=Decimal("0.01"), max_price=Decimal("1000000"), tick_size=Decimal("0.01"))
    for s in ("BTCUSDT", "ETHUSDT", "ETHBTC", "WBTCETH", "BTCDOMUSDT", "SHIBUSDT", "USDCUSDT")
]


def now_ms() -> int:
    return int(time.time() * 1000)


async def get(client: httpx.AsyncClient, tokens: Tokens, path: str, **params: Any) -> httpx.Response:
    return await client.get(path, params=params, headers=tokens.headers("u1"))


async def test_search_puts_names_starting_with_q_first_then_names_containing_it(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    await publish_catalog(redis, SEARCHED)
    response = await get(client, tokens, "/symbols", q="btc")
    assert response.status_code == 200
    assert [s["symbol"] for s in response.json()["items"]] == ["BTCDOMUSDT", "BTCUSDT", "ETHBTC", "WBTCETH"]
    everything = await get(client, tokens, "/symbols")
    assert [s["symbol"] for s in everything.json()["items"]] == sorted(s.symbol for s in SEARCHED)
    limited = await get(client, tokens, "/symbols", q="usd", limit=2)
    assert [s["symbol"] for s in limited.json()["items"]] == ["USDCUSDT", "BTCDOMUSDT"]
    assert (await get(client, tokens, "/symbols", q="xyz")).json() == {"items": []}


@pytest.mark.parametrize(
    "params", [{"q": "b" * 21}, {"q": "BTC-USDT"}, {"q": "btc usdt"}, {"limit": 0}, {"limit": 101}, {"limit": "x"}]
)
async def test_bad_queries_are_422(client: httpx.AsyncClient, tokens: Tokens, params: dict[str, Any]) -> None:
    response = await get(client, tokens, "/symbols", **params)
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


@pytest.mark.usefixtures("catalog")
async def test_one_symbol_any_case_with_its_filter_and_a_fresh_price_in_canonical_text(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    at = now_ms() - 2_000
    await redis.hset(names.PRICES, "SHIBUSDT", f"0.00001230 {at}")  # ingest packs canonically; read either way
    response = await get(client, tokens, "/symbols/shibusdt")
    assert response.status_code == 200
    assert response.json() == {
        "symbol": "SHIBUSDT",
        "min_price": "0.00000001",
        "max_price": "1",
        "tick_size": "0.00000001",
        "price": "0.0000123",
        "price_at": datetime.fromtimestamp(at / 1000, UTC).isoformat().replace("+00:00", "Z"),
    }


@pytest.mark.usefixtures("catalog")
async def test_a_stale_or_missing_or_garbled_price_is_null(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    await redis.hset(
        names.PRICES,
        mapping={
            "BTCUSDT": PriceQuote(Decimal("64818.28"), now_ms() - 11_000).pack(),
            "ETHUSDT": "not a quote",
            "ETHBTC": PriceQuote(Decimal("0.05"), now_ms()).pack(),
        },
    )
    items = {s["symbol"]: s for s in (await get(client, tokens, "/symbols")).json()["items"]}
    assert (items["BTCUSDT"]["price"], items["BTCUSDT"]["price_at"]) == (None, None)
    assert items["ETHUSDT"]["price"] is None and items["SHIBUSDT"]["price"] is None
    assert items["ETHBTC"]["price"] == "0.05"
    single = (await get(client, tokens, "/symbols/BTCUSDT")).json()
    assert single["price"] is None and single["min_price"] == "0.01" and single["max_price"] == "1000000"


@pytest.mark.usefixtures("catalog")
async def test_an_unknown_symbol_is_404_with_close_matches(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await get(client, tokens, "/symbols/ETHUSDC")
    error = response.json()["error"]
    assert response.status_code == 404 and error["code"] == "unknown_symbol"
    assert error["details"]["close_matches"][0] == "ETHUSDT"
    assert (await get(client, tokens, "/symbols/" + "X" * 41)).status_code == 422


@pytest.mark.usefixtures("catalog")
async def test_the_symbols_need_a_token(client: httpx.AsyncClient) -> None:
    for path in ("/symbols", "/symbols/BTCUSDT"):
        response = await client.get(path)
        assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"
        bad = await client.get(path, headers={"Authorization": "Bearer a.b.c"})
        assert bad.status_code == 401


async def test_the_routes_are_in_openapi(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"200", "401", "422", "503"} <= set(paths["/symbols"]["get"]["responses"])
    assert {"200", "401", "404"} <= set(paths["/symbols/{symbol}"]["get"]["responses"])
    assert paths["/symbols"]["get"].get("security"), "the Authorize button must apply"


async def test_without_a_catalog_an_unreachable_exchange_is_said_plainly(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    plain = await get(client, tokens, "/symbols")
    assert plain.status_code == 503 and "try again shortly" in plain.json()["error"]["message"]
    since = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
    link = ExchangeLink(
        LinkState.UNREACHABLE, "https://api.binance.com", "cannot resolve api.binance.com", since, since
    )
    await redis.hset(names.EXCHANGE_LINK, mapping=link.to_fields())
    for answer in (
        await get(client, tokens, "/symbols"),
        await client.post("/alerts", json={"symbol": "BTCUSDT", "target_price": "1"}, headers=tokens.headers("u1")),
    ):
        error = answer.json()["error"]
        assert answer.status_code == 503 and error["code"] == "catalog_unavailable"
        assert error["message"] == (
            "The exchange is unreachable from this server, so there is no symbol catalog yet: cannot resolve "
            "api.binance.com. `make demo` runs offline on a simulated market."
        )
        assert error["details"]["exchange"]["state"] == "unreachable"


async def test_readyz_shows_the_exchange_link_without_changing_readiness(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    since = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
    link = ExchangeLink(LinkState.UNREACHABLE, "https://api.binance.com", "connection refused", since, since)
    await redis.hset(names.EXCHANGE_LINK, mapping=link.to_fields())
    await redis.expire(names.EXCHANGE_LINK, EXCHANGE_LINK_TTL_S)
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "exchange": {
            "state": "unreachable",
            "url": "https://api.binance.com",
            "error": "connection refused",
            "since": "2026-12-06T14:00:00+00:00",
        },
    }
    await redis.hset(names.EXCHANGE_LINK, mapping={**link.to_fields(), "state": "connected", "error": ""})
    assert (await client.get("/readyz")).json()["exchange"]["state"] == "connected"
