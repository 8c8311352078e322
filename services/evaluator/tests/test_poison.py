"""Hostile entries on the evaluator's streams: each ends in the dead letters, and the evaluator goes on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from evaluator_testkit import SHARDS, alert_event, events_stream, fired_alert_ids, tick_stream
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import Tick, now_ms
from pricealert.common.publisher import publish
from pricealert.common.shards import shard_of
from pricealert.devstack.poison import send_hostile, wait_dead_lettered
from pricealert.evaluator.handlers import run
from pricealert.evaluator.settings import EvaluatorSettings
from pricealert.testsupport.polling import eventually

TICKS, EVENTS = tick_stream("BTCUSDT"), events_stream("BTCUSDT")


@pytest.fixture
async def evaluator(redis: Redis, redis_url: str) -> AsyncIterator[asyncio.Task[None]]:
    """The evaluator as production wires it (it takes every shard), in this loop; quick reclaims."""
    settings = EvaluatorSettings(
        redis_url=redis_url, consumer_name="ev-poison", EVALUATOR_RECLAIM_IDLE_MS=300, EVALUATOR_TICK_BATCH_SIZE=50
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run(redis, settings, stop))

    async def ticks_group() -> bool:
        return bool(await redis.exists(TICKS)) and any(
            g["name"] == names.GROUP_EVALUATOR.encode() for g in await redis.xinfo_groups(TICKS)
        )

    await eventually(ticks_group, alive=task, within=15)
    yield task
    stop.set()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 15)


@pytest.mark.timeout(90)
async def test_hostile_alert_events_are_dead_lettered_and_the_index_goes_on(
    redis: Redis, evaluator: asyncio.Task[None]
) -> None:
    sent = await send_hostile(redis, EVENTS, alert_event("good", "above", "100").to_fields())
    await wait_dead_lettered(redis, sent, [names.GROUP_EVALUATOR])
    await publish(redis, EVENTS, alert_event("after", "above", "200"))

    async def indexed() -> bool:
        return bool(await redis.zcard(names.eval_above_key(shard_of("BTCUSDT", SHARDS), "BTCUSDT")) == 1)

    await eventually(indexed, alive=evaluator, within=15)


@pytest.mark.timeout(90)
async def test_hostile_ticks_are_dead_lettered_and_good_ticks_still_fire(
    redis: Redis, evaluator: asyncio.Task[None]
) -> None:
    await publish(redis, EVENTS, alert_event("a1", "above", "100"))

    async def indexed() -> bool:
        return bool(await redis.zcard(names.eval_above_key(shard_of("BTCUSDT", SHARDS), "BTCUSDT")) == 1)

    await eventually(indexed, alive=evaluator, within=15)
    good = Tick(symbol="BTCUSDT", price=Decimal("50"), trade_id=1, exchange_time=now_ms(), received_at=now_ms())
    sent = await send_hostile(redis, TICKS, good.to_fields())
    await wait_dead_lettered(redis, sent, [names.GROUP_EVALUATOR])
    await publish(
        redis,
        TICKS,
        Tick(symbol="BTCUSDT", price=Decimal("101"), trade_id=2, exchange_time=now_ms(), received_at=now_ms()),
    )

    async def fired() -> bool:
        return await fired_alert_ids(redis) == ["a1"]

    await eventually(fired, alive=evaluator, within=15)
