"""Contract of pricealert:symbol-catalog: ingest's catalog publisher writes what CatalogSnapshot reads."""

from __future__ import annotations

import httpx
from contracts_testkit import assert_written_as, entries
from redis.asyncio import Redis

from pricealert.common.events import CatalogSnapshot
from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.ingest.catalog import CatalogPublisher
from pricealert.ingest.settings import IngestSettings


async def test_the_catalog_publisher_writes_a_snapshot_that_catalog_snapshot_reads(
    redis: Redis, redis_url: str
) -> None:
    async with FakeExchange() as exchange, httpx.AsyncClient(trust_env=False) as client:
        settings = IngestSettings(
            binance_ws_url=exchange.ws_url, binance_rest_url=exchange.rest_url, redis_url=redis_url
        )
        published = await CatalogPublisher(settings, redis).refresh(client)
        expected = {s.symbol for s in exchange.symbols.values() if s.trading}
    [raw] = await entries(redis, CatalogSnapshot.stream)
    assert_written_as(CatalogSnapshot, raw)
    snapshot = CatalogSnapshot.from_fields(raw)
    assert snapshot == published
    assert set(snapshot.entries()) == expected and snapshot.count == len(expected)
