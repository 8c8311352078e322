"""The exchange sending absurd prices: no tick for them, a counter per reason, a few log lines, good trades flow."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import structlog
from ingest_testkit import Ingest, emit_alert, shard
from redis.asyncio import Redis

from pricealert.common.events import AlertEventType, Tick
from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.ingest.metrics import IngestCollector
from pricealert.testsupport.polling import eventually

Start = Callable[..., Ingest]
ABSURD = {  # price on the wire -> why ingest refuses it (BTCUSDT's filter is [0.01, 1000000])
    "1e7000000": "not_decimal",
    "-5": "not_decimal",
    "NaN": "not_decimal",
    "9" * 41: "too_long",
    "9" * 21: "too_long",
    "0": "not_positive",
    "2000000.00000000": "above_max_price",
    "0.00100000": "below_min_price",
}


def trade_frame(price: Any, trade_id: int) -> str:
    now = int(time.time() * 1000)
    return json.dumps(
        {
            "e": "trade",
            "E": now,
            "s": "BTCUSDT",
            "t": trade_id,
            "p": price,
            "q": "0.001",
            "T": now,
            "m": False,
            "M": True,
        },
        separators=(",", ":"),
    )


def rejected_counts(ingest: Ingest) -> dict[str, float]:
    """The rejected-trades counter as the /metrics endpoint would show it, by reason."""
    families = IngestCollector(ingest.service.stats, dict).collect()
    family = next(f for f in families if f.name == "pricealert_ingest_trades_rejected")
    return {s.labels["reason"]: s.value for s in family.samples}


async def published(redis: Redis) -> list[tuple[int, int]]:
    """(trade id, length of the price) of every BTCUSDT tick on its shard's stream, read raw."""
    entries: Any = await redis.xrange(Tick.stream_of(shard("BTCUSDT")))
    return [(int(fields[b"trade_id"]), len(fields[b"price"])) for _, fields in entries]


async def test_absurd_prices_make_no_tick_are_counted_by_reason_and_good_trades_flow(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    with structlog.testing.capture_logs() as logs:
        ingest = start_ingest()
        await eventually(lambda: ingest.service.catalog.published >= 1, what="catalog fetched")
        await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
        await eventually(lambda: exchange.subscribers("btcusdt@trade"), what="subscribed")
        for n, price in enumerate(ABSURD):
            exchange.emit("btcusdt@trade", trade_frame(price, 100 + n))
        first = await exchange.play_trade("BTCUSDT", "70000.5")

        await eventually(lambda: published_once(redis, first), what="the good trade's tick")
        assert await published(redis) == [(first, len("70000.50000000"))]
        # Then a flood: many frames per reason.
        for n in range(50 * len(ABSURD)):
            exchange.emit("btcusdt@trade", trade_frame(list(ABSURD)[n % len(ABSURD)], 1000 + n))
        second = await exchange.play_trade("BTCUSDT", "70001")
        await eventually(lambda: published_once(redis, second), what="the next good trade's tick")

    assert [trade_id for trade_id, _ in await published(redis)] == [first, second]
    expected = dict.fromkeys(("not_decimal", "too_long", "not_positive", "below_min_price", "above_max_price"), 0.0)
    for reason in ABSURD.values():
        expected[reason] += 51
    assert rejected_counts(ingest) == expected
    assert ingest.service.stats.published == 2 and ingest.service.stats.malformed == 0
    lines = [e for e in logs if e["event"] == "ingest.trade.rejected"]
    assert sorted(e["reason"] for e in lines) == sorted(expected)  # one line per reason, not one per frame
    assert all(len(e["price"]) < 60 for e in lines)


async def published_once(redis: Redis, trade_id: int) -> bool:
    return trade_id in [t for t, _ in await published(redis)]
