"""Appending events to streams, trimmed approximately so Redis memory stays bounded."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from pricealert.common import names
from pricealert.common.events import Event
from pricealert.common.redisconn import RedisClient, RedisPipeline

DEFAULT_MAXLEN = 1_000_000
# A soak (chaos/soak.py) divides every cap by this so that each stream reaches its cap within minutes, not days;
# no cap goes below 100 entries (or its own size, if smaller).
MAXLEN_DIVISOR_VARIABLE = "STREAM_MAXLEN_DIVISOR"
SMALLEST_DIVIDED_MAXLEN = 100


def full_maxlen(stream: str) -> int:
    """The approximate length cap of `stream` in production."""
    if stream.endswith(":dead"):
        return names.DEAD_LETTER_MAXLEN
    if stream.startswith(names.FEED_KEYS):
        return names.FEED_MAXLEN
    return names.STREAM_MAXLEN.get(names.stream_kind(stream), DEFAULT_MAXLEN)


def maxlen_for(stream: str, divisor: int | None = None) -> int:
    """The approximate length cap of `stream`, divided by `divisor` (by default STREAM_MAXLEN_DIVISOR, if set)."""
    cap = full_maxlen(stream)
    if divisor is None:
        divisor = int(os.environ.get(MAXLEN_DIVISOR_VARIABLE) or 1)
    return cap if divisor <= 1 else max(min(cap, SMALLEST_DIVIDED_MAXLEN), cap // divisor)


def fields_of(event: Event | Mapping[str, str]) -> dict[str, str]:
    """The str -> str mapping an event (or a ready mapping) is written as."""
    return event.to_fields() if isinstance(event, Event) else dict(event)


def append(target: RedisClient | RedisPipeline, stream: str, event: Event | Mapping[str, str]) -> Any:
    """XADD `event` to `stream` with its approximate cap: the one trimmed XADD, for clients and pipelines alike.

    On a client await the result for the entry id; on a pipeline (a Redis subclass) the command is queued.
    """
    return target.xadd(stream, fields_of(event), maxlen=maxlen_for(stream), approximate=True)  # type: ignore[arg-type]  # redis-py's field mapping type is invariant in its values


async def publish(redis: RedisClient, stream: str, event: Event | Mapping[str, str]) -> str:
    """XADD one event; returns its entry id."""
    entry_id = await append(redis, stream, event)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def publish_many(redis: RedisClient, stream: str, events: Iterable[Event | Mapping[str, str]]) -> list[str]:
    """XADD several events in one pipelined round trip; returns their entry ids."""
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            append(pipe, stream, event)
        ids = await pipe.execute()
    return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
