"""The shared consumer loop against a real Redis: reclaim, dead letters, clean stop."""

from __future__ import annotations

import asyncio
import base64
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, Message, PermanentError, StreamConsumer
from pricealert.common.tasks import cancel_and_wait
from pricealert.testsupport.polling import eventually

STREAM = "test:stream"


def options(consumer: str, **overrides: object) -> ConsumerOptions:
    base: dict[str, object] = dict(
        stream=STREAM,
        group="g",
        consumer=consumer,
        service="test",
        reclaim_idle_ms=200,
        reclaim_every_s=0.05,
        block_ms=50,
        max_deliveries=3,
    )
    base.update(overrides)
    return ConsumerOptions(**base)  # type: ignore[arg-type]


async def pending_count(redis: Redis) -> int:
    summary = await redis.xpending(STREAM, "g")
    return int(summary["pending"])


async def test_entry_of_a_crashed_handler_stays_pending_and_another_consumer_reclaims_it(redis: Redis) -> None:
    started = asyncio.Event()
    handled_by_b: list[str] = []

    async def hangs(messages: Sequence[Message]) -> None:
        started.set()
        await asyncio.sleep(3600)

    async def records(messages: Sequence[Message]) -> None:
        handled_by_b.extend(m.fields["n"] for m in messages)

    consumer_a = StreamConsumer(redis, options("a"), hangs)
    await consumer_a.ensure_group()
    await redis.xadd(STREAM, {"n": "1"})
    crash = asyncio.create_task(consumer_a.run(asyncio.Event()))
    await asyncio.wait_for(started.wait(), 5)
    await cancel_and_wait(crash)  # the process dies mid-message: nothing acked
    assert await pending_count(redis) == 1

    stop = asyncio.Event()
    consumer_b = StreamConsumer(redis, options("b"), records)
    task = asyncio.create_task(consumer_b.run(stop))

    async def handled() -> bool:
        return handled_by_b == ["1"]

    await eventually(handled)
    stop.set()
    await task
    assert await pending_count(redis) == 0


async def test_failing_handler_leaves_entry_pending_then_succeeds_on_redelivery(redis: Redis) -> None:
    attempts: list[int] = []

    async def flaky(messages: Sequence[Message]) -> None:
        attempts.append(messages[0].deliveries)
        if len(attempts) == 1:
            raise RuntimeError("transient")

    stop = asyncio.Event()
    consumer = StreamConsumer(redis, options("a"), flaky)
    await consumer.ensure_group()
    await redis.xadd(STREAM, {"n": "1"})
    task = asyncio.create_task(consumer.run(stop))

    async def succeeded() -> bool:
        return len(attempts) == 2 and await pending_count(redis) == 0

    await eventually(succeeded)
    stop.set()
    await task
    assert attempts == [1, 2]
    assert await redis.xlen(names.dead_letter_stream(STREAM)) == 0


async def test_message_that_always_fails_ends_in_dead_letters_after_max_deliveries(redis: Redis) -> None:
    deliveries: list[int] = []

    async def always_fails(messages: Sequence[Message]) -> None:
        deliveries.append(messages[0].deliveries)
        raise RuntimeError("boom")

    stop = asyncio.Event()
    consumer = StreamConsumer(redis, options("a"), always_fails)
    await consumer.ensure_group()
    entry_id = (await redis.xadd(STREAM, {"n": "poison"})).decode()
    task = asyncio.create_task(consumer.run(stop))
    dead = names.dead_letter_stream(STREAM)

    async def dead_lettered() -> bool:
        return bool(await redis.xlen(dead))

    await eventually(dead_lettered)
    stop.set()
    await task
    assert deliveries == [1, 2, 3]
    [(_, fields)] = await redis.xrange(dead)
    assert fields[b"n"] == b"poison"
    assert fields[b"dl_entry_id"].decode() == entry_id
    assert b"RuntimeError: boom" in fields[b"dl_reason"]
    assert fields[b"dl_deliveries"] == b"3"
    assert await pending_count(redis) == 0


async def test_permanent_error_dead_letters_at_once_and_the_batch_goes_on(redis: Redis) -> None:
    handled: list[str] = []

    async def rejects_poison(messages: Sequence[Message]) -> None:
        for message in messages:
            if message.fields["n"] == "bad":
                raise PermanentError("cannot parse")
        handled.extend(m.fields["n"] for m in messages)

    stop = asyncio.Event()
    consumer = StreamConsumer(redis, options("a"), rejects_poison)
    await consumer.ensure_group()
    for n in ("1", "bad", "2"):
        await redis.xadd(STREAM, {"n": n})
    task = asyncio.create_task(consumer.run(stop))

    async def done() -> bool:
        return sorted(handled) == ["1", "2"] and await pending_count(redis) == 0

    await eventually(done)
    stop.set()
    await task
    [(_, fields)] = await redis.xrange(names.dead_letter_stream(STREAM))
    assert fields[b"n"] == b"bad" and fields[b"dl_deliveries"] == b"1"


async def test_entry_that_is_not_utf8_is_dead_lettered_at_once_and_the_loop_goes_on(redis: Redis) -> None:
    handled: list[str] = []

    async def records(messages: Sequence[Message]) -> None:
        handled.extend(m.fields["n"] for m in messages)

    stop = asyncio.Event()
    consumer = StreamConsumer(redis, options("a"), records)
    await consumer.ensure_group()
    poison = (await redis.xadd(STREAM, {b"n": b"\xff\xfe", b"\x80": b"x"})).decode()
    task = asyncio.create_task(consumer.run(stop))
    await redis.xadd(STREAM, {"n": "after"})

    async def done() -> bool:
        return (handled == ["after"] and await pending_count(redis) == 0) or task.done()

    await eventually(done)
    assert not task.done(), task.exception()
    stop.set()
    await task
    [(_, fields)] = await redis.xrange(names.dead_letter_stream(STREAM))
    assert fields[b"dl_entry_id"].decode() == poison and fields[b"dl_deliveries"] == b"1"
    assert b"MalformedEvent" in fields[b"dl_reason"] and b"not UTF-8" in fields[b"dl_reason"]
    assert fields[b"n"] == b"b64:" + base64.b64encode(b"\xff\xfe")


async def test_dead_lettering_cannot_fail_on_what_the_entry_holds(redis: Redis) -> None:
    """A handler that fails on every delivery without looking: the dead letter is built from raw bytes."""
    deliveries: list[int] = []

    async def always_fails(messages: Sequence[Message]) -> None:
        deliveries.append(messages[0].deliveries)
        raise RuntimeError("down")

    stop = asyncio.Event()
    consumer = StreamConsumer(redis, options("a"), always_fails)
    await consumer.ensure_group()
    await redis.xadd(STREAM, {b"\xff": b"\x00" * 2_000_000})
    task = asyncio.create_task(consumer.run(stop))

    async def dead_lettered() -> bool:
        return bool(await redis.xlen(names.dead_letter_stream(STREAM))) or task.done()

    await eventually(dead_lettered)
    assert not task.done(), task.exception()
    stop.set()
    await task
    assert deliveries == [1, 2, 3] and await pending_count(redis) == 0
    [(_, fields)] = await redis.xrange(names.dead_letter_stream(STREAM))
    assert b"RuntimeError: down" in fields[b"dl_reason"] and b"2000000 bytes" in fields[b"dl_truncated"]
    assert sum(len(v) for v in fields.values()) < 100_000


async def test_consumer_recreates_its_group_when_redis_lost_it(redis: Redis) -> None:
    handled: list[str] = []

    async def records(messages: Sequence[Message]) -> None:
        handled.extend(m.fields["n"] for m in messages)

    stop = asyncio.Event()
    consumer = StreamConsumer(redis, options("a"), records)
    task = asyncio.create_task(consumer.run(stop))
    await redis.xadd(STREAM, {"n": "1"})

    async def first() -> bool:
        return handled == ["1"]

    await eventually(first)
    await redis.flushall()  # what a Redis restart without persistence looks like
    await redis.xadd(STREAM, {"n": "2"})

    async def second() -> bool:
        return handled == ["1", "2"]

    await eventually(second)
    stop.set()
    await task


@pytest.mark.timeout(60)
async def test_sigterm_stops_cleanly_and_no_entry_is_lost(redis: Redis, redis_url: str) -> None:
    total = 40
    for n in range(total):
        await redis.xadd(STREAM, {"n": str(n)})
    script = Path(__file__).with_name("consumer_process.py")
    process = subprocess.Popen([sys.executable, str(script), redis_url, STREAM, "worker-1", "0.02"])
    try:

        async def some_handled() -> bool:
            return int(await redis.get(f"{STREAM}:handled-count") or 0) >= 5

        await eventually(some_handled)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    handled_before = await redis.scard(f"{STREAM}:handled")
    assert 0 < handled_before < total
    # Whatever was not handled is still in the stream for this consumer: pending (own PEL) or not yet read.
    summary = await redis.xpending(STREAM, "g")
    info = next(g for g in await redis.xinfo_groups(STREAM) if g["name"] == b"g")
    assert summary["pending"] == 0 or summary["consumers"][0]["name"] == b"worker-1"
    assert info["last-delivered-id"]

    restarted = subprocess.Popen([sys.executable, str(script), redis_url, STREAM, "worker-1", "0"])
    try:

        async def all_handled() -> bool:
            return await redis.scard(f"{STREAM}:handled") == total and await pending_count(redis) == 0

        await eventually(all_handled, within=30)
    finally:
        restarted.send_signal(signal.SIGTERM)
        await asyncio.to_thread(restarted.wait, 20)
    # Each entry handled exactly once: the clean stop released nothing half-done.
    assert int(await redis.get(f"{STREAM}:handled-count") or 0) == total


async def test_prefetch_reads_the_next_batch_during_the_handler_and_a_stop_leaves_nothing_pending(redis: Redis) -> None:
    for n in range(50):
        await redis.xadd(STREAM, {"n": str(n)})
    handled: list[str] = []
    pending_during: list[int] = []
    stop = asyncio.Event()

    async def records(messages: Sequence[Message]) -> None:
        await asyncio.sleep(0.05)  # the next read lands meanwhile
        pending_during.append(await pending_count(redis))
        handled.extend(m.fields["n"] for m in messages)
        await redis.xack(STREAM, "g", *[m.id for m in messages])
        if len(handled) == 20:
            stop.set()

    prefetching = {"batch_size": 10, "prefetch": True, "handler_acks": True, "reclaim_idle_ms": 5000}
    first = StreamConsumer(redis, options("a", **prefetching), records)
    await first.ensure_group()
    await first.run(stop)
    # While a batch was handled, the next one was already delivered: both pending.
    assert pending_during[0] == 20
    # The stop came with a batch read ahead: handled before returning, so another consumer goes on in order.
    assert handled == [str(n) for n in range(30)]
    assert await pending_count(redis) == 0

    stop = asyncio.Event()
    task = asyncio.create_task(StreamConsumer(redis, options("b", **prefetching), records).run(stop))

    async def all_handled() -> bool:
        return len(handled) == 50 and await pending_count(redis) == 0

    await eventually(all_handled)
    stop.set()
    await task
    assert handled == [str(n) for n in range(50)]


async def test_a_batch_read_ahead_of_a_slow_one_is_not_handled_twice_after_a_reclaim(redis: Redis) -> None:
    for n in range(30):
        await redis.xadd(STREAM, {"n": str(n)})
    handled: list[str] = []

    async def slow_first(messages: Sequence[Message]) -> None:
        if not handled:
            await asyncio.sleep(0.6)  # past reclaim_idle_ms: the batch read ahead is reclaimable meanwhile
        handled.extend(m.fields["n"] for m in messages)
        await redis.xack(STREAM, "g", *[m.id for m in messages])

    stop = asyncio.Event()
    consumer = StreamConsumer(
        redis,
        options("a", batch_size=10, prefetch=True, handler_acks=True, reclaim_idle_ms=400, reclaim_every_s=0.05),
        slow_first,
    )
    await consumer.ensure_group()
    task = asyncio.create_task(consumer.run(stop))

    async def all_handled() -> bool:
        return len(handled) >= 30 and await pending_count(redis) == 0

    await eventually(all_handled)
    stop.set()
    await task
    assert sorted(handled, key=int) == [str(n) for n in range(30)], handled
