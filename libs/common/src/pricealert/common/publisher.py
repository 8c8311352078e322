"""Appending events to streams, trimmed approximately so Redis memory stays bounded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import Event

DEFAULT_MAXLEN = 1_000_000


def maxlen_for(stream: str) -> int:
    """The approximate length cap of `stream`."""
    if stream.endswith(":dead"):
        return names.DEAD_LETTER_MAXLEN
    return names.STREAM_MAXLEN.get(stream, DEFAULT_MAXLEN)


async def publish(redis: Redis, stream: str, event: Event | Mapping[str, str]) -> str:
    """XADD one event; returns its entry id."""
    fields = event.to_fields() if isinstance(event, Event) else dict(event)
    entry_id = await redis.xadd(stream, fields, maxlen=maxlen_for(stream), approximate=True)  # type: ignore[arg-type]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def publish_many(redis: Redis, stream: str, events: Iterable[Event | Mapping[str, str]]) -> list[str]:
    """XADD several events in one pipelined round trip; returns their entry ids."""
    cap = maxlen_for(stream)
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            fields = event.to_fields() if isinstance(event, Event) else dict(event)
            pipe.xadd(stream, fields, maxlen=cap, approximate=True)  # type: ignore[arg-type]
        ids = await pipe.execute()
    return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
