"""The consumer loop's typed path against a real Redis: handlers get decoded events, malformed entries dead letters."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, Received, StreamConsumer
from pricealert.common.events import Event

STREAM = "test:typed"


class Ping(Event):
    """A tiny event for the loop to decode."""

    n: int


def options(**overrides: object) -> ConsumerOptions:
    base: dict[str, object] = dict(stream=STREAM, group="g", consumer="a", service="test", block_ms=50)
    base.update(overrides)
    return ConsumerOptions(**base)  # type: ignore[arg-type]


async def test_a_typed_handler_gets_events_with_their_entries_and_malformed_ones_are_dead_lettered(
    redis: Redis,
) -> None:
    batches: list[list[Received[Ping]]] = []

    async def handle(messages: Sequence[Received[Ping]]) -> None:
        batches.append(list(messages))

    consumer = StreamConsumer(redis, options(), handle, event=Ping)
    await consumer.ensure_group()
    first = (await redis.xadd(STREAM, {"n": "1", "extra": "kept"})).decode()
    bad = (await redis.xadd(STREAM, {"n": "not a number"})).decode()
    await redis.xadd(STREAM, {"n": "2"})
    assert await consumer.poll_once() == 3

    [batch] = batches
    assert [m.event for m in batch] == [Ping(n=1), Ping(n=2)]
    assert batch[0].id == first and batch[0].deliveries == 1
    assert batch[0].fields == {"n": "1", "extra": "kept"}  # the raw entry, fields the event does not name included
    [(_, letter)] = await redis.xrange(names.dead_letter_stream(STREAM))
    assert letter[b"dl_entry_id"].decode() == bad and letter[b"n"] == b"not a number"
    assert b"MalformedEvent" in letter[b"dl_reason"]
    summary = await redis.xpending(STREAM, "g")
    assert summary["pending"] == 0


async def test_a_typed_batch_that_fails_is_retried_entry_by_entry(redis: Redis) -> None:
    handled: list[int] = []

    async def handle(messages: Sequence[Received[Ping]]) -> None:
        if any(m.event.n == 13 for m in messages):
            raise RuntimeError("unlucky")
        handled.extend(m.event.n for m in messages)

    consumer = StreamConsumer(redis, options(max_deliveries=1), handle, event=Ping)
    await consumer.ensure_group()
    for n in (1, 13, 2):
        await redis.xadd(STREAM, {"n": str(n)})
    await consumer.poll_once()
    assert handled == [1, 2]
    [(_, letter)] = await redis.xrange(names.dead_letter_stream(STREAM))
    assert letter[b"n"] == b"13" and b"RuntimeError: unlucky" in letter[b"dl_reason"]
