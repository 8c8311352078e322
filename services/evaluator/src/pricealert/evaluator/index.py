"""The index of active alerts in Redis: sorted sets per symbol and direction, scored by target price.

A symbol's sets and its shard's tombstones carry the shard's hash tag (names.eval_*_key of shard_of(symbol)), so
each script touches one slot. Each member carries the whole alert (MEMBER_FIELDS, tab-separated, name last), so
firing needs no second lookup and no per-alert hash entry. A member the evaluation script parked (see matcher.py)
has a mark, an order key and a tab in front of that. The scripts are lua/member.lua with lua/index_alert.lua or
lua/unindex_alert.lua.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from pricealert.common import names
from pricealert.common.events import AlertEvent, AlertEventType, Condition
from pricealert.common.redisconn import RedisClient
from pricealert.common.scripts import lua
from pricealert.common.shards import DEFAULT_SHARDS, shard_of

TOMBSTONE_TTL_S = 30 * 24 * 3600  # longer than any redelivery or resync of an alert event
# Marks of parked members: they sort after (above) or before (below) every alert id among equal scores.
PARKED_MARKS = (b"~", b"!")

# An index member's fields, tab-separated, name last: index_alert.lua writes the first two and member_rest the rest;
# member.lua's parse reads them by these names (tests/contracts checks it).
MEMBER_FIELDS = ("alert_id", "indexed_at", "user_id", "email", "condition", "target_price", "expires_at", "name")

# Adds an alert unless it left the index already (a late create) or is indexed already (a redelivery).
INDEX_ALERT = lua("pricealert.evaluator", "member", "index_alert")
# Takes an alert out of the index for good and leaves a tombstone (in the shard's tombstone set).
UNINDEX_ALERT = lua("pricealert.evaluator", "member", "unindex_alert")


def index_keys(shard: int, symbol: str) -> list[str]:
    """The keys of `symbol`'s index in `shard`, in the scripts' order: cross, above, below."""
    return [
        names.eval_cross_key(shard, symbol),
        names.eval_above_key(shard, symbol),
        names.eval_below_key(shard, symbol),
    ]


def member_alert_id(member: bytes) -> str:
    """The alert id of an index member, parked or not."""
    if member[:1] in PARKED_MARKS:
        member = member.split(b"\t", 1)[1]
    return member.split(b"\t", 1)[0].decode()


def _clean(value: str) -> str:
    """Tabs and line breaks separate the member's fields: never let a value contain one."""
    return value.replace("\t", " ").replace("\n", " ").replace("\r", " ")


@dataclass(frozen=True)
class IndexedAlert:
    """What the index keeps of an alert: enough to write a complete trigger."""

    alert_id: str
    user_id: str
    email: str
    symbol: str
    condition: Condition
    target_price: str
    name: str
    expires_at_ms: int | None

    @classmethod
    def from_event(cls, event: AlertEvent) -> IndexedAlert:
        """The index entry for a created alert."""
        expires = int(event.expires_at.timestamp() * 1000) if event.expires_at else None
        return cls(
            event.alert_id,
            event.user_id,
            event.email,
            event.symbol.upper(),
            event.condition,
            format(event.target_price, "f"),
            event.name or "",
            expires,
        )

    def member_rest(self) -> str:
        """The member's fields after id and indexed_at."""
        expires = str(self.expires_at_ms) if self.expires_at_ms is not None else ""
        values = {
            "user_id": _clean(self.user_id),
            "email": _clean(self.email),
            "condition": self.condition.value,
            "target_price": self.target_price,
            "expires_at": expires,
            "name": _clean(self.name),
        }
        return "\t".join(values[field] for field in MEMBER_FIELDS[2:])


class AlertIndex:
    """Applies alert events to the index (in the shard of each alert's symbol); every operation is idempotent."""

    def __init__(self, redis: RedisClient, count: int = DEFAULT_SHARDS) -> None:
        self.redis = redis
        self.count = count
        self._index: AsyncScript = redis.register_script(INDEX_ALERT)
        self._unindex: AsyncScript = redis.register_script(UNINDEX_ALERT)

    def keys_of(self, symbol: str) -> list[str]:
        """The keys the scripts touch for `symbol`: its cross, above and below sets, its shard's tombstones."""
        shard = shard_of(symbol, self.count)
        return [*index_keys(shard, symbol), names.eval_done_key(shard)]

    async def apply(self, event: AlertEvent, client: RedisClient | Pipeline | None = None) -> bool:
        """Add a created alert, remove a deleted or expired one; True if the index changed (False on a pipeline)."""
        symbol, target = event.symbol.upper(), format(event.target_price, "f")
        if "\t" in event.alert_id or not event.alert_id or event.alert_id[:1].encode() in PARKED_MARKS:
            raise ValueError(f"unusable alert id {event.alert_id!r}")
        keys = self.keys_of(symbol)
        reply: Any
        if event.type is AlertEventType.CREATED:
            alert = IndexedAlert.from_event(event)
            args = [alert.alert_id, target, alert.member_rest(), alert.condition.value]
            reply = await self._index(keys=keys, args=args, client=client)
        else:
            args = [event.alert_id, target, str(TOMBSTONE_TTL_S)]
            reply = await self._unindex(keys=keys, args=args, client=client)
        return not isinstance(client, Pipeline) and bool(reply)
