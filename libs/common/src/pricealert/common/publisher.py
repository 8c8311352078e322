"""Appending events to streams, trimmed approximately so Redis memory stays bounded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pricealert.common import names
from pricealert.common.events import Event
from pricealert.common.redisconn import RedisClient, RedisPipeline

DEFAULT_MAXLEN = 1_000_000


def maxlen_for(stream: str) -> int:
    """The approximate length cap of `stream`."""
    if stream.endswith(":dead"):
        return names.DEAD_LETTER_MAXLEN
    return names.STREAM_MAXLEN.get(names.stream_kind(stream), DEFAULT_MAXLEN)


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
