"""What every stream holds: length, consumer groups, consumers, pending entries, lag and dead letters."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis

from pricealert.common import names

KNOWN_STREAMS = (
    names.TICKS,
    names.ALERT_EVENTS,
    names.TRIGGERS,
    names.NOTIFICATION_RESULTS,
    names.SYMBOL_CATALOG,
    names.SIGNING_KEYS,
    names.ACCOUNT_EVENTS,
)
DEAD_SUFFIX = names.dead_letter_stream("")
# Redis < 7 reports no lag: it is counted with XRANGE, but never further than this.
LAG_COUNT_LIMIT = 10_000


@dataclass
class ConsumerInfo:
    """One consumer of a group: its pending entries and how long it has been idle."""

    name: str
    pending: int
    idle_ms: int


@dataclass
class GroupInfo:
    """One consumer group of a stream."""

    name: str
    pending: int
    last_delivered_id: str
    lag: int | None
    lag_exact: bool
    consumers: list[ConsumerInfo] = field(default_factory=list)


@dataclass
class StreamInfo:
    """One stream, its groups and the size of its dead-letter stream."""

    name: str
    exists: bool
    length: int
    last_id: str | None
    dead_letter_stream: str
    dead_letters: int
    groups: list[GroupInfo] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def text(value: Any) -> str:
    """A Redis reply value as str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def resolve_stream(name: str) -> str:
    """Accept `triggers`, `pricealert:triggers` or `pricealert:triggers:dead`; return the stream's full name."""
    if name.endswith(DEAD_SUFFIX):
        name = name[: -len(DEAD_SUFFIX)]
    if not name.startswith(f"{names.PREFIX}:"):
        name = f"{names.PREFIX}:{name}"
    return name


async def discover_streams(redis: Redis) -> list[str]:
    """The known streams, then every other pricealert stream in Redis (dead-letter streams excluded)."""
    found: set[str] = set()
    async for key in redis.scan_iter(match=f"{names.PREFIX}:*", count=1000, _type="stream"):
        found.add(text(key))
    others = sorted(s for s in found if not s.endswith(DEAD_SUFFIX) and s not in KNOWN_STREAMS)
    return [*KNOWN_STREAMS, *others]


async def stream_info(redis: Redis, stream: str) -> StreamInfo:
    """Length, groups, consumers, pending, lag and dead-letter count of one stream."""
    dead = names.dead_letter_stream(stream)
    dead_count = int(await redis.xlen(dead))
    if not await redis.exists(stream):
        return StreamInfo(stream, False, 0, None, dead, dead_count)
    info = await redis.xinfo_stream(stream)
    last_id = text(info["last-generated-id"])
    result = StreamInfo(stream, True, int(info["length"]), last_id, dead, dead_count)
    for group in await redis.xinfo_groups(stream):
        result.groups.append(await _group_info(redis, stream, group))
    return result


async def _group_info(redis: Redis, stream: str, group: dict[str, Any]) -> GroupInfo:
    name = text(group["name"])
    last_delivered = text(group["last-delivered-id"])
    lag = group.get("lag")
    exact = lag is not None
    if lag is None:
        lag, exact = await _count_after(redis, stream, last_delivered)
    consumers = [
        ConsumerInfo(text(c["name"]), int(c["pending"]), int(c["idle"]))
        for c in await redis.xinfo_consumers(stream, name)
    ]
    return GroupInfo(name, int(group["pending"]), last_delivered, int(lag), exact, consumers)


async def _count_after(redis: Redis, stream: str, last_id: str) -> tuple[int, bool]:
    """Entries after `last_id` (the group's lag), counted up to LAG_COUNT_LIMIT."""
    count, start = 0, f"({last_id}"
    while count < LAG_COUNT_LIMIT:
        batch = await redis.xrange(stream, start, "+", count=min(1000, LAG_COUNT_LIMIT - count))
        if not batch:
            return count, True
        count += len(batch)
        start = f"({text(batch[-1][0])}"
    more = await redis.xrange(stream, start, "+", count=1)
    return count, not more


async def all_streams(redis: Redis) -> list[StreamInfo]:
    """`stream_info` of every known and discovered stream."""
    return [await stream_info(redis, stream) for stream in await discover_streams(redis)]
