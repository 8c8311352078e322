"""Contract of the ticks streams: ingest's tick writer (its script included) writes what Tick reads."""

from __future__ import annotations

import typing
from decimal import Decimal

from contracts_testkit import assert_written_as, entries
from redis.asyncio import Redis

from pricealert.common.events import Tick
from pricealert.common.ownership import ShardOwnership
from pricealert.common.shards import shard_of
from pricealert.ingest.frames import Trade
from pricealert.ingest.stats import Stats
from pricealert.ingest.tickwriter import TickPipeline


async def test_the_tick_writer_writes_ticks_that_tick_reads(redis: Redis) -> None:
    trades = [
        Trade("BTCUSDT", Decimal("78530.40000000"), 6268487624, 1777807004058, 1777807004060),
        Trade("ETHUSDT", Decimal("0.00000001"), 1, 2, 3),
    ]
    ownership = ShardOwnership(redis, service="ingest", consumer="contract", count=16)
    ownership.owned |= await ownership.try_take(16)
    writer = TickPipeline(redis, Stats(), ownership=ownership, queue_size=10, batch_size=10, dedupe_window=10)
    assert await writer.publish(trades) == 2
    for trade in trades:
        (entry,) = await entries(redis, Tick.stream_of(shard_of(trade.symbol, 16)))
        assert_written_as(Tick, entry)
        assert Tick.from_fields(entry) == trade.to_tick()
    (eth,) = await entries(redis, Tick.stream_of(shard_of("ETHUSDT", 16)))
    assert eth[b"price"] == b"0.00000001"  # plain digits, as Tick.to_fields writes them


def test_a_trade_is_a_tick_field_for_field() -> None:
    assert Trade._fields == Tick.FIELDS


def test_the_evaluator_tick_line_layout_fits_tick() -> None:
    # matcher.py's tick lines and evaluate_ticks.lua read a tick positionally: symbol, price, then integers.
    hints = typing.get_type_hints(Tick)
    assert Tick.FIELDS[:2] == ("symbol", "price")
    assert [hints[name] for name in Tick.FIELDS[2:]] == [int] * (len(Tick.FIELDS) - 2)
