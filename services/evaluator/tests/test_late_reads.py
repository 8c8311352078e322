"""A former shard owner's read that lands after the takeover: the new owner judges those trades first, in order."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from evaluator_testkit import SHARDS
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.consumer import StreamConsumer
from pricealert.common.events import AlertEvent, AlertEventType, Condition, Frequency, Tick, Trigger, utc_now
from pricealert.common.ownership import ShardLeaseLost
from pricealert.common.shards import shard_of
from pricealert.evaluator.handlers import SERVICE, ticks_consumer
from pricealert.evaluator.index import AlertIndex
from pricealert.evaluator.settings import EvaluatorSettings

SHARD = shard_of("BTCUSDT", SHARDS)
START = 1_800_000_000_000


def consumer(redis: Redis, name: str) -> StreamConsumer:
    """A ticks consumer of BTCUSDT's shard run under the token `name`, one tick per batch, no read-ahead."""
    settings = EvaluatorSettings(consumer_name=name, tick_batch_size=10, EVALUATOR_RECLAIM_IDLE_MS=60_000)
    made = ticks_consumer(redis, settings, SHARD, owner_key=names.shard_owner_key(SERVICE, SHARD), token=name)
    made.options = dataclasses.replace(made.options, block_ms=5, prefetch=False)
    return made


async def trade(redis: Redis, price: str, n: int) -> None:
    tick = Tick(symbol="BTCUSDT", price=Decimal(price), trade_id=n, exchange_time=START + n * 1000, received_at=START)
    await redis.xadd(Tick.stream_of(SHARD), tick.to_fields())  # type: ignore[arg-type]  # redis-py's mapping type


async def test_a_late_read_of_a_former_owner_is_judged_before_newer_trades(redis: Redis) -> None:
    owner_key = names.shard_owner_key(SERVICE, SHARD)
    old, new = consumer(redis, "old-owner"), consumer(redis, "new-owner")
    await old.ensure_group()
    recurring = AlertEvent(
        type=AlertEventType.CREATED,
        event_id="e1",
        alert_id="a1",
        user_id="u1",
        email="u1@example.com",
        symbol="BTCUSDT",
        condition=Condition.ABOVE,
        target_price=Decimal(100),
        frequency=Frequency.EVERY_TIME,
        cooldown_s=1,
        occurred_at=utc_now(),
    )
    await AlertIndex(redis, SHARDS).apply(recurring)
    await redis.set(owner_key, "old-owner")
    await trade(redis, "99", 1)
    await old.poll_once()
    await redis.set(owner_key, "new-owner")  # the old owner stalled past its lease; the new one takes the shard
    await new.redelivery.take_all_pending()  # its start: nothing pending yet
    await trade(redis, "101", 2)
    await trade(redis, "99", 3)
    with pytest.raises(ShardLeaseLost):
        await old.poll_once()  # its read was in flight: it gets both trades, and may not judge them
    await trade(redis, "101", 4)
    assert await new.poll_once() == 3  # the late read's two trades taken over, then the newer one, in order
    assert (await redis.xpending(Tick.stream_of(SHARD), names.GROUP_EVALUATOR))["pending"] == 0
    fired = [(f[b"firing"], f[b"price"]) for _, f in await redis.xrange(Trigger.stream_of(SHARD))]
    # 99, 101 (fires), 99 (re-arms), 101 (fires again): judged out of order, the last 101 would come first and the
    # two trades of the old owner's read after it, firing once.
    assert fired == [(b"1", b"101"), (b"2", b"101")]
