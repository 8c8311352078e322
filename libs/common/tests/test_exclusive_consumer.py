"""ConsumerOptions(exclusive=True): a new shard owner takes every entry the group left pending, and handles it first."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, Message, StreamConsumer
from pricealert.common.redisconn import RedisClient
from pricealert.testsupport.polling import eventually

STREAM = names.ticks_stream(3)
GROUP = names.GROUP_EVALUATOR


async def _left_pending(redis: RedisClient, count: int) -> list[str]:
    """`count` entries, all read by two consumers of an old owner that died without acking; plus 2 unread ones."""
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(count + 2):
            pipe.xadd(STREAM, {"n": str(i)})
        ids = [entry_id.decode() for entry_id in await pipe.execute()]
    await redis.xgroup_create(STREAM, GROUP, id="0")
    await redis.xreadgroup(GROUP, "old-owner-a", {STREAM: ">"}, count=count // 2)
    await redis.xreadgroup(GROUP, "old-owner-b", {STREAM: ">"}, count=count - count // 2)
    return ids


async def _take_over(redis: RedisClient, *, exclusive: bool, pending: int = 10) -> tuple[list[Message], list[str]]:
    ids = await _left_pending(redis, pending)
    handled: list[Message] = []

    async def handle(messages: Sequence[Message]) -> None:
        handled.extend(messages)

    # A reclaim that would only take entries idle for a minute: what arrives comes from the takeover, or not at all.
    options = ConsumerOptions(
        STREAM, GROUP, "new-owner", service="evaluator", exclusive=exclusive, reclaim_idle_ms=60_000, block_ms=50
    )
    stop = asyncio.Event()
    task = asyncio.create_task(StreamConsumer(redis, options, handle).run(stop))
    try:
        expected = pending + 2 if exclusive else 2
        await eventually(lambda: len(handled) >= expected, within=20, what="entries handled", alive=task)
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await task
    return handled, ids


async def test_an_exclusive_consumer_takes_every_pending_entry_at_once_and_in_order(redis: Redis) -> None:
    handled, ids = await _take_over(redis, exclusive=True)

    assert [m.id for m in handled] == ids  # the dead owner's entries first, in stream order, then the new ones
    assert [m.deliveries for m in handled[:10]] == [2] * 10  # the old owner's delivery, then this one's
    summary = await redis.xpending(STREAM, GROUP)
    assert summary["pending"] == 0


async def test_a_shared_consumer_leaves_other_consumers_pending_entries_to_the_idle_reclaim(redis: Redis) -> None:
    handled, ids = await _take_over(redis, exclusive=False)

    assert [m.id for m in handled] == ids[10:]
    assert (await redis.xpending(STREAM, GROUP))["pending"] == 10


async def test_the_takeover_pages_through_a_long_pending_list(redis: Redis) -> None:
    handled, ids = await _take_over(redis, exclusive=True, pending=2345)  # more than a page of a thousand

    assert [m.id for m in handled] == ids
    assert (await redis.xpending(STREAM, GROUP))["pending"] == 0


async def test_an_exclusive_consumer_takes_over_on_a_cluster(redis_cluster: RedisClient) -> None:
    handled, ids = await _take_over(redis_cluster, exclusive=True)

    assert [m.id for m in handled] == ids
    assert (await redis_cluster.xpending(STREAM, GROUP))["pending"] == 0


async def test_a_pending_entry_trimmed_away_does_not_stop_the_takeover(redis: Redis) -> None:
    ids = await _left_pending(redis, 4)
    await redis.xdel(STREAM, ids[1])  # trimmed while pending at the old owner
    handled: list[Message] = []

    async def handle(messages: Sequence[Message]) -> None:
        handled.extend(messages)

    options = ConsumerOptions(STREAM, GROUP, "new-owner", service="evaluator", exclusive=True, block_ms=50)
    stop = asyncio.Event()
    task = asyncio.create_task(StreamConsumer(redis, options, handle).run(stop))
    try:
        await eventually(lambda: len(handled) == 5, within=10, what="the entries still there handled", alive=task)
    finally:
        stop.set()
        await task
    assert [m.id for m in handled] == [i for i in ids if i != ids[1]]
    assert (await redis.xpending(STREAM, GROUP))["pending"] == 0


async def test_entries_a_former_owner_read_after_the_takeover_are_handled_before_newer_ones(redis: Redis) -> None:
    # The old owner's read was in flight when its lease went: it lands after the new owner took the pending list
    # over. The new owner must handle those entries before the ones it reads after them (per-symbol order).
    await redis.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    handled: list[Message] = []

    async def handle(messages: Sequence[Message]) -> None:
        handled.extend(messages)

    options = ConsumerOptions(
        STREAM, GROUP, "new-owner", service="evaluator", exclusive=True, reclaim_idle_ms=60_000, block_ms=5
    )
    consumer = StreamConsumer(redis, options, handle)
    await consumer.redelivery.take_all_pending()  # its start: nothing pending yet
    late = [(await redis.xadd(STREAM, {"n": str(i)})).decode() for i in range(3)]
    await redis.xreadgroup(GROUP, "old-owner", {STREAM: ">"}, count=3)  # the old owner's late read
    newer = [(await redis.xadd(STREAM, {"n": str(i)})).decode() for i in range(3, 5)]
    while len(handled) < 5:
        await consumer.poll_once()
    assert [m.id for m in handled] == late + newer
    assert (await redis.xpending(STREAM, GROUP))["pending"] == 0
