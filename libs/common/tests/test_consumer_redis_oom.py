"""A consumer under Redis at maxmemory with noeviction (writes refused with OOM): it backs off instead of stopping,
spends no delivery towards dead-lettering, and handles every entry once memory is freed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, Message, StreamConsumer
from pricealert.testsupport.polling import eventually

STREAM = "test:oom"


@pytest.fixture
def redis_url(own_redis_url: str) -> str:
    """A Redis of this test's own: its maxmemory must not reach the session's."""
    return own_redis_url


async def test_writes_refused_stop_nothing_and_dead_letter_nothing(redis: Redis) -> None:
    handled: list[str] = []

    async def write_each(messages: Sequence[Message]) -> None:
        for message in messages:
            await redis.set(f"test:out:{message.fields['n']}", "1")  # refused while Redis is full
            handled.append(message.fields["n"])

    options = ConsumerOptions(
        stream=STREAM,
        group="g",
        consumer="a",
        service="test",
        reclaim_idle_ms=100,
        reclaim_every_s=0.02,
        block_ms=50,
        max_deliveries=2,
    )
    stop = asyncio.Event()
    consumer = StreamConsumer(redis, options, write_each)
    await consumer.ensure_group()
    for n in range(3):
        await redis.xadd(STREAM, {"n": str(n)})
    await redis.config_set("maxmemory-policy", "noeviction")
    await redis.config_set("maxmemory", "1")  # below what is in use: every write is refused
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.sleep(2.0)  # many reclaim rounds, were the consumer re-reading
    assert not task.done(), task
    assert handled == []
    await redis.config_set("maxmemory", "0")
    await eventually(lambda: len(handled) == 3, what="every entry handled once memory is freed", alive=task)
    stop.set()
    await task
    assert sorted(handled) == ["0", "1", "2"]
    assert await redis.xlen(names.dead_letter_stream(STREAM)) == 0
    assert int((await redis.xpending(STREAM, "g"))["pending"]) == 0


@pytest.mark.usefixtures("plain_tracebacks")  # a slow traceback would hold the loop until memory is freed
async def test_a_batch_in_hand_when_writes_are_refused_is_kept_not_dead_lettered(redis: Redis) -> None:
    handled: list[str] = []
    gate = asyncio.Event()

    async def write_each(messages: Sequence[Message]) -> None:
        await gate.wait()
        for message in messages:
            await redis.set(f"test:out:{message.fields['n']}", "1")  # refused while Redis is full
            handled.append(message.fields["n"])

    options = ConsumerOptions(
        stream=STREAM,
        group="g",
        consumer="a",
        service="test",
        reclaim_idle_ms=100,
        reclaim_every_s=0.02,
        block_ms=50,
        max_deliveries=1,  # a failure counted toward the dead letters would dead-letter the entry at once
    )
    stop = asyncio.Event()
    consumer = StreamConsumer(redis, options, write_each)
    await consumer.ensure_group()
    for n in range(3):
        await redis.xadd(STREAM, {"n": str(n)})
    task = asyncio.create_task(consumer.run(stop))

    async def read() -> bool:
        return int((await redis.xpending(STREAM, "g"))["pending"]) == 3

    try:
        await eventually(read, what="the batch read, in the handler's hands", alive=task)
        await redis.config_set("maxmemory-policy", "noeviction")
        await redis.config_set("maxmemory", "1")  # every write is refused
        gate.set()
        await asyncio.sleep(1.0)
        assert not task.done(), task
        await redis.config_set("maxmemory", "0")
        await eventually(lambda: len(handled) == 3, what="every entry handled once memory is freed", alive=task)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert sorted(handled) == ["0", "1", "2"]
    assert await redis.xlen(names.dead_letter_stream(STREAM)) == 0
    assert int((await redis.xpending(STREAM, "g"))["pending"]) == 0
