"""What every stream holds, shard by shard: length, groups, consumers, pending, lag, dead letters and owners."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.exceptions import ResponseError

from pricealert.cli.leases import OWNED_GROUPS, Lease, read_leases, shard_count
from pricealert.common import names
from pricealert.common.redisconn import RedisClient

# The streams that are not sharded, after the per-shard ones.
CONTROL_STREAMS = (names.SYMBOL_CATALOG, names.SIGNING_KEYS, names.ACCOUNT_EVENTS)
DEAD_SUFFIX = names.dead_letter_stream("")
# Redis < 7 reports no lag: it is counted with XRANGE, but never further than this.
LAG_COUNT_LIMIT = 10_000


class UnknownStream(ValueError):
    """A stream name the CLI cannot resolve (a shard out of range, a shard given to an unsharded stream)."""


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
    """One stream, its groups, the size of its dead-letter stream and (per shard) the lease holders."""

    name: str
    exists: bool
    length: int
    last_id: str | None
    dead_letter_stream: str
    dead_letters: int
    groups: list[GroupInfo] = field(default_factory=list)
    kind: str = ""
    shard: int | None = None
    owners: dict[str, str | None] = field(default_factory=dict)  # service -> lease holder's token

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass
class GroupTotal:
    """One consumer group summed over every shard's stream of a kind."""

    name: str
    pending: int = 0
    lag: int = 0
    lag_exact: bool = True


@dataclass
class KindTotal:
    """Every shard's stream of one kind, summed."""

    kind: str
    streams: int = 0
    length: int = 0
    dead_letters: int = 0
    groups: list[GroupTotal] = field(default_factory=list)


@dataclass
class StreamsReport:
    """`pricealert streams`: the shard count, every stream, and totals per kind."""

    shard_count: int
    streams: list[StreamInfo]
    totals: list[KindTotal]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def text(value: Any) -> str:
    """A Redis reply value as str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def full_name(name: str) -> str:
    """`triggers`, `{s3}:triggers`, their `pricealert:` or `:dead` forms: the stream's full name (or kind's)."""
    name = name.removesuffix(DEAD_SUFFIX)
    return name if name.startswith(f"{names.PREFIX}:") else f"{names.PREFIX}:{name}"


def resolve_streams(name: str, shard: int | None, count: int) -> list[str]:
    """The streams `name` means: one shard's stream, every shard's stream of a kind, or one unsharded stream."""
    full = full_name(name)
    named_shard = names.stream_shard(full)
    kind = full.removeprefix(f"{names.PREFIX}:")
    if named_shard is not None:
        if shard is not None and shard != named_shard:
            raise UnknownStream(f"{full} is on shard {named_shard}, not {shard}")
        return [full]
    if kind in names.SHARDED_STREAM_KINDS:
        if shard is None:
            return [names.shard_stream(k, kind) for k in range(count)]
        if not 0 <= shard < count:
            raise UnknownStream(f"shard {shard} does not exist: there are {count} (0 to {count - 1})")
        return [names.shard_stream(shard, kind)]
    if shard is not None:
        raise UnknownStream(f"{full} is not sharded: drop --shard")
    return [full]


def known_streams(count: int) -> list[str]:
    """Every shard's stream of each kind, kind by kind, then the unsharded streams."""
    return [
        *(names.shard_stream(k, kind) for kind in names.SHARDED_STREAM_KINDS for k in range(count)),
        *CONTROL_STREAMS,
    ]


async def discover_streams(redis: RedisClient, count: int) -> list[str]:
    """The known streams, then every other pricealert stream in Redis (dead-letter streams excluded)."""
    known = known_streams(count)
    found: set[str] = set()
    async for key in redis.scan_iter(match=f"{names.PREFIX}:*", count=1000, _type="stream"):
        found.add(text(key))
    others = sorted(s for s in found - set(known) if not s.endswith(DEAD_SUFFIX))
    return [*known, *others]


async def stream_info(redis: RedisClient, stream: str) -> StreamInfo:
    """Length, groups, consumers, pending, lag and dead-letter count of one stream."""
    [info] = await streams_info(redis, [stream])
    return info


async def streams_info(redis: RedisClient, streams: Sequence[str]) -> list[StreamInfo]:
    """`stream_info` of each of `streams`, in a few pipelined round trips (a cluster's pipeline asks each master)."""
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xlen(names.dead_letter_stream(stream))
            pipe.xinfo_stream(stream)
            pipe.xinfo_groups(stream)
        replies = await pipe.execute(raise_on_error=False)
    infos: list[StreamInfo] = []
    groups: list[tuple[StreamInfo, dict[str, Any]]] = []
    for index, stream in enumerate(streams):
        dead_count, info, group_replies = replies[3 * index : 3 * index + 3]
        dead = names.dead_letter_stream(stream)
        result = StreamInfo(
            stream,
            False,
            0,
            None,
            dead,
            int(_ok(dead_count)),
            kind=names.stream_kind(stream),
            shard=names.stream_shard(stream),
        )
        if not _missing(info):
            result.exists, result.length = True, int(_ok(info)["length"])
            result.last_id = text(_ok(info)["last-generated-id"])
            groups += [(result, group) for group in _ok(group_replies)]
        infos.append(result)
    async with redis.pipeline(transaction=False) as pipe:
        for result, group in groups:
            pipe.xinfo_consumers(result.name, text(group["name"]))
        consumers = await pipe.execute()
    for (result, group), replies_of_group in zip(groups, consumers, strict=True):
        result.groups.append(await _group_info(redis, result.name, group, replies_of_group))
    return infos


def _missing(reply: Any) -> bool:
    """Whether a pipelined XINFO STREAM answered that the stream does not exist."""
    return isinstance(reply, ResponseError) and "no such key" in str(reply)


def _ok(reply: Any) -> Any:
    """A pipelined reply, or the error it holds raised."""
    if isinstance(reply, Exception):
        raise reply
    return reply


async def _group_info(
    redis: RedisClient, stream: str, group: dict[str, Any], consumers: list[dict[str, Any]]
) -> GroupInfo:
    name = text(group["name"])
    last_delivered = text(group["last-delivered-id"])
    lag = group.get("lag")
    exact = lag is not None
    if lag is None:
        lag, exact = await _count_after(redis, stream, last_delivered)
    found = [ConsumerInfo(text(c["name"]), int(c["pending"]), int(c["idle"])) for c in consumers]
    return GroupInfo(name, int(group["pending"]), last_delivered, int(lag), exact, found)


async def _count_after(redis: RedisClient, stream: str, last_id: str) -> tuple[int, bool]:
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


def totals(streams: list[StreamInfo]) -> list[KindTotal]:
    """Per kind of the sharded streams: how many, their length, dead letters, and each group's pending and lag."""
    by_kind = {kind: KindTotal(kind) for kind in names.SHARDED_STREAM_KINDS}
    for stream in streams:
        total = by_kind.get(stream.kind) if stream.shard is not None else None
        if total is None:
            continue
        total.streams += 1
        total.length += stream.length
        total.dead_letters += stream.dead_letters
        for group in stream.groups:
            summed = next((g for g in total.groups if g.name == group.name), None)
            if summed is None:
                summed = GroupTotal(group.name)
                total.groups.append(summed)
            summed.pending += group.pending
            summed.lag += group.lag or 0
            summed.lag_exact = summed.lag_exact and group.lag_exact
    for total in by_kind.values():
        total.groups.sort(key=lambda g: g.name)
    return list(by_kind.values())


async def all_streams(
    redis: RedisClient, default_count: int, *, kind: str | None = None, shard: int | None = None
) -> StreamsReport:
    """`stream_info` of every known and discovered stream (or those of one kind, one shard), owners and totals."""
    count = await shard_count(redis, default_count)
    wanted = await discover_streams(redis, count)
    if kind is not None:
        wanted = [s for s in wanted if names.stream_kind(s) in (kind, full_name(kind))]
    if shard is not None:
        wanted = [s for s in wanted if names.stream_shard(s) == shard]
    leases = await read_leases(redis, sorted({s for s in map(names.stream_shard, wanted) if s is not None}))
    infos = await streams_info(redis, wanted)
    for info in infos:
        if info.shard is not None:
            info.owners = {service: _holder(leases.get((service, info.shard))) for service in OWNED_GROUPS}
    return StreamsReport(count, infos, totals(infos))


def _holder(lease: Lease | None) -> str | None:
    return None if lease is None else lease.owner
