"""A handler whose dependency is away (RetryLater) keeps its batch in hand: no delivery spent, nothing dead-lettered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis

from pricealert.common import consumer as consumer_module
from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, Message, RetryLater, StreamConsumer
from pricealert.testsupport.polling import eventually

STREAM = "test:retry-later"


@pytest.fixture(autouse=True)
def short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "RETRY_LATER_S", (0.02, 0.05))


def options() -> ConsumerOptions:
    # Reclaimed (and counted) after 100 ms idle, dead-lettered after 2 deliveries: a RetryLater must spend neither.
    return ConsumerOptions(
        stream=STREAM,
        group="g",
        consumer="a",
        service="test",
        reclaim_idle_ms=100,
        reclaim_every_s=0.02,
        block_ms=50,
        max_deliveries=2,
    )


async def test_the_batch_is_retried_in_hand_until_the_dependency_answers(redis: Redis) -> None:
    seen: list[tuple[str, int]] = []
    away = 8

    async def database_away_for_a_while(messages: Sequence[Message]) -> None:
        nonlocal away
        if away > 0:
            away -= 1
            raise RetryLater("database away")
        seen.extend((m.fields["n"], m.deliveries) for m in messages)

    stop = asyncio.Event()
    consumer = StreamConsumer(redis, options(), database_away_for_a_while)
    await consumer.ensure_group()
    await redis.xadd(STREAM, {"n": "1"})
    task = asyncio.create_task(consumer.run(stop))
    await eventually(lambda: seen, what="handled once the dependency answered", alive=task)
    stop.set()
    await task
    assert seen == [("1", 1)]
    assert int((await redis.xpending(STREAM, "g"))["pending"]) == 0
    assert await redis.xlen(names.dead_letter_stream(STREAM)) == 0


async def test_a_stop_while_waiting_leaves_the_entry_pending(redis: Redis) -> None:
    calls = 0

    async def always_away(messages: Sequence[Message]) -> None:
        nonlocal calls
        calls += 1
        raise RetryLater("database away")

    stop = asyncio.Event()
    consumer = StreamConsumer(redis, options(), always_away)
    await consumer.ensure_group()
    await redis.xadd(STREAM, {"n": "1"})
    task = asyncio.create_task(consumer.run(stop))
    await eventually(lambda: calls > 5, what="retried", alive=task)
    stop.set()
    stopped_at = time.monotonic()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - stopped_at < 1.0
    [pending] = await redis.xpending_range(STREAM, "g", min="-", max="+", count=10)
    assert pending["times_delivered"] == 1
    assert await redis.xlen(names.dead_letter_stream(STREAM)) == 0
