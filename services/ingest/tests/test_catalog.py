"""The symbol catalog is fetched from REST exchangeInfo and published as one snapshot."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from ingest_testkit import Ingest, make_settings
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import CatalogSnapshot
from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.ingest.catalog import CatalogPublisher, CatalogUnavailable, parse_exchange_info
from pricealert.testsupport.polling import eventually

Start = Callable[..., Ingest]


async def snapshots(redis: Redis) -> list[CatalogSnapshot]:
    return [CatalogSnapshot.from_fields(f) for _id, f in await redis.xrange(names.SYMBOL_CATALOG)]


async def test_catalog_snapshot_is_published_at_start(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    start_ingest()
    (snapshot,) = await eventually(lambda: snapshots(redis), what="catalog snapshot")
    entries = snapshot.entries()
    assert "BTCUSDT" in entries and "BTCSTUSDT" not in entries  # BREAK symbols are not tradable
    assert snapshot.count == len(entries) == sum(1 for s in exchange.symbols.values() if s.trading)
    btc = entries["BTCUSDT"]
    assert (btc.min_price, btc.max_price, btc.tick_size) == (Decimal("0.01"), Decimal("1000000"), Decimal("0.01"))
    assert exchange.rest_faults.requests[0][1] == "/api/v3/exchangeInfo?symbolStatus=TRADING"


async def test_catalog_retries_after_rate_limit(
    redis: Redis, redis_url: str, exchange: FakeExchange, start_ingest: Start
) -> None:
    exchange.fail_rest(1, status=429, retry_after_s=1)
    start_ingest(make_settings(exchange, redis_url))
    await eventually(lambda: snapshots(redis), within=5.0, what="catalog after 429")
    # Only the catalog's requests: the price snapshot polls the ticker once the catalog's first attempt is done.
    (limited, ok) = [r for r in exchange.rest_faults.requests if r[1].startswith("/api/v3/exchangeInfo")][:2]
    assert ok[0] - limited[0] >= 0.95  # Retry-After respected


async def test_catalog_refreshes_periodically(
    redis: Redis, redis_url: str, exchange: FakeExchange, start_ingest: Start
) -> None:
    start_ingest(make_settings(exchange, redis_url, catalog_refresh_s=0.2))
    await eventually(lambda: _at_least(redis, 3), what="three snapshots")


async def _at_least(redis: Redis, count: int) -> bool:
    return len(await snapshots(redis)) >= count


async def test_fetch_reports_server_errors(redis: Redis, redis_url: str, exchange: FakeExchange) -> None:
    exchange.fail_rest(1, status=418, retry_after_s=120)
    publisher = CatalogPublisher(make_settings(exchange, redis_url), redis)
    async with httpx.AsyncClient() as client:
        with pytest.raises(CatalogUnavailable) as caught:
            await publisher.fetch(client)
    assert caught.value.retry_after_s == 120


def test_parse_keeps_trading_symbols_and_tolerates_missing_filters() -> None:
    body = {
        "symbols": [
            {
                "symbol": "AAAUSDT",
                "status": "TRADING",
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": "0.00010000",
                        "maxPrice": "100.00000000",
                        "tickSize": "0.00010000",
                    }
                ],
            },
            {"symbol": "BBBUSDT", "status": "HALT", "filters": []},
            {"symbol": "CCCUSDT", "status": "TRADING"},
            "garbage",
        ]
    }
    parsed = {s.symbol: s for s in parse_exchange_info(body)}
    assert set(parsed) == {"AAAUSDT", "CCCUSDT"}
    assert parsed["AAAUSDT"].tick_size == Decimal("0.0001") and parsed["CCCUSDT"].max_price == 0
    with pytest.raises(CatalogUnavailable):
        parse_exchange_info({"nope": 1})
