"""Who works which shard: the shard leases of evaluator and ingest replicas, and their live members."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from pricealert.common import names
from pricealert.common.events import now_ms
from pricealert.common.redisconn import RedisClient

# The services whose replicas share the shards by leases (ownership.py); each reads its shards in a group
# named like itself, so a group's owner on a shard is its service's lease holder.
OWNED_GROUPS = (names.GROUP_EVALUATOR, names.GROUP_INGEST)


@dataclass
class Lease:
    """One shard's lease of one service: the holder's token (None when free) and how long it still runs."""

    service: str
    shard: int
    owner: str | None
    ttl_ms: int | None


@dataclass
class Member:
    """One live replica of a sharded service: its token, its last beat, and the shards it holds now."""

    service: str
    token: str
    last_beat_ms: int | None  # None: holds a lease but is not in the members set (stopped beating)
    age_ms: int | None
    shards: list[int] = field(default_factory=list)


@dataclass
class ShardRow:
    """One shard: its lease per service."""

    shard: int
    leases: dict[str, Lease]


@dataclass
class ShardsReport:
    """`pricealert shards`: the count (recorded in Redis or assumed), every shard's leases, the members."""

    shard_count: int
    recorded: bool
    shards: list[ShardRow]
    members: list[Member]
    unowned: dict[str, list[int]]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def recorded_shard_count(redis: RedisClient) -> int | None:
    """The count the workers agreed on (shards.agree_on_shard_count), None before any worker started."""
    value = await redis.get(names.SHARD_COUNT_KEY)
    return None if value is None else int(_text(value))


async def shard_count(redis: RedisClient, default: int) -> int:
    """The recorded shard count, else `default` (SHARDS)."""
    return await recorded_shard_count(redis) or default


async def read_leases(redis: RedisClient, shards: Sequence[int]) -> dict[tuple[str, int], Lease]:
    """The lease of each service on each of `shards`, by (service, shard)."""
    keys = [(service, shard) for shard in shards for service in OWNED_GROUPS]
    # Not a transaction: on a cluster the owner keys live in as many slots as shards.
    async with redis.pipeline(transaction=False) as pipe:
        for service, shard in keys:
            pipe.get(names.shard_owner_key(service, shard))
            pipe.pttl(names.shard_owner_key(service, shard))
        replies = await pipe.execute()
    leases = {}
    for index, (service, shard) in enumerate(keys):
        owner, ttl = replies[2 * index], int(replies[2 * index + 1])
        leases[(service, shard)] = Lease(
            service, shard, None if owner is None else _text(owner), ttl if owner is not None and ttl >= 0 else None
        )
    return leases


async def read_members(redis: RedisClient, service: str) -> list[Member]:
    """The replicas in `service`'s members set, most recent beat first (a silent one drops out after a lease)."""
    now = now_ms()
    entries = cast(list[tuple[Any, float]], await redis.zrange(names.members_key(service), 0, -1, withscores=True))
    members = [Member(service, _text(token), int(score), max(0, now - int(score))) for token, score in entries]
    return sorted(members, key=lambda m: m.age_ms or 0)


async def shards_report(redis: RedisClient, default_count: int) -> ShardsReport:
    """Every shard's leases, the members of each sharded service with the shards each holds, the free shards."""
    recorded = await recorded_shard_count(redis)
    count = recorded or default_count
    leases = await read_leases(redis, range(count))
    rows = [ShardRow(shard, {s: leases[(s, shard)] for s in OWNED_GROUPS}) for shard in range(count)]
    members: list[Member] = []
    unowned: dict[str, list[int]] = {}
    for service in OWNED_GROUPS:
        live = await read_members(redis, service)
        by_token = {member.token: member for member in live}
        unowned[service] = []
        for shard in range(count):
            owner = leases[(service, shard)].owner
            if owner is None:
                unowned[service].append(shard)
            elif owner in by_token:
                by_token[owner].shards.append(shard)
            else:  # a holder that left the members set (stopped beating): its lease runs out by itself
                by_token[owner] = Member(service, owner, None, None, [shard])
                live.append(by_token[owner])
        members.extend(live)
    return ShardsReport(count, recorded is not None, rows, members, unowned)
