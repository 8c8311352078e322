"""The index of active alerts in Redis: sorted sets per symbol and direction, scored by threshold.

A symbol's sets and its shard's tombstones and definitions carry the shard's hash tag (names.eval_*_key of
shard_of(symbol)), so each script touches one slot. A v1-shaped alert (AlertFacts.is_compact: a level, once, no
message, first version) is one member carrying the whole alert (MEMBER_FIELDS, tab-separated, name last), so firing
needs no second lookup and no per-alert hash entry. Every other alert is its id in the sets its state puts it in,
its definition and state in the shard's defs hash (`definition`, lua/defs.lua; docs/conditions.md has the rules).
A member the evaluation script parked (see matcher.py) has a mark, an order key and a tab in front of that. The
scripts are lua/member.lua and lua/defs.lua with lua/index_alert.lua, lua/index_def.lua or lua/unindex_alert.lua.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from pricealert.common import names
from pricealert.common.events import (
    PERCENT_CONDITIONS,
    RANGE_CONDITIONS,
    WINDOWS,
    AlertEvent,
    AlertEventType,
    AlertFacts,
    Condition,
)
from pricealert.common.redisconn import RedisClient
from pricealert.common.scripts import lua
from pricealert.common.shards import DEFAULT_SHARDS, shard_of

TOMBSTONE_TTL_S = 30 * 24 * 3600  # longer than any redelivery or resync of an alert event
# Marks of parked members: they sort after (above) or before (below) every alert id among equal scores.
PARKED_MARKS = (b"~", b"!")

# An index member's fields, tab-separated, name last: index_alert.lua writes the first two and member_rest the rest;
# member.lua's parse reads them by these names (tests/contracts checks it).
MEMBER_FIELDS = ("alert_id", "indexed_at", "user_id", "email", "condition", "target_price", "expires_at", "name")

# Adds a v1-shaped alert unless it left the index already (a late create), is indexed already (a redelivery) or a
# later version of it is.
INDEX_ALERT = lua("pricealert.evaluator", "member", "index_alert")
# Indexes any other alert, or a new version of any, with its whole definition (unless a newer one is in).
INDEX_DEFINITION = lua("pricealert.evaluator", "member", "defs", "index_def")
# Takes an alert out of the index for good and leaves a tombstone (in the shard's tombstone set).
UNINDEX_ALERT = lua("pricealert.evaluator", "member", "defs", "unindex_alert")
# The step between two prices: every price has at most 18 decimals, so p > x exactly when p >= x + STEP.
STEP = Decimal("1E-18")


def symbol_keys(shard: int, symbol: str) -> list[str]:
    """The keys of `symbol`'s index in `shard`, in the scripts' order (lua/defs.lua's symbol_keys)."""
    return [
        names.eval_cross_key(shard, symbol),
        names.eval_above_key(shard, symbol),
        names.eval_below_key(shard, symbol),
        names.eval_adv_key(shard, symbol),
        names.eval_pct_key(shard, symbol, "up"),
        names.eval_pct_key(shard, symbol, "down"),
        names.eval_pct_key(shard, symbol, "move"),
        names.eval_own_key(shard, symbol),
    ]


def _plain(value: Decimal) -> str:
    return format(value, "f")


def definition(alert: AlertFacts, expires_at_ms: int | None) -> str:
    """The JSON the scripts keep of a non-v1-shaped alert (lua/defs.lua; the script adds its state)."""
    values: dict[str, Any] = {
        "u": alert.user_id,
        "e": alert.email,
        "c": alert.condition.value,
        "n": alert.name or "",
        "m": alert.message or "",
        "ch": alert.channels or "",
        "f": alert.frequency.value,
        "cd": (alert.cooldown_s or 0) * 1000,
        "cds": "" if alert.cooldown_s is None else str(alert.cooldown_s),
        "x": "" if expires_at_ms is None else str(expires_at_ms),
        **dict.fromkeys(("t", "tm", "tp", "lo", "hi", "lm", "hp", "p", "w"), ""),
        "wi": 0,
    }
    with localcontext(prec=80):  # 20 integer and 18 fraction digits, and one step beyond: exact
        if alert.condition in PERCENT_CONDITIONS:
            assert alert.percent is not None and alert.window is not None  # the event's validator checked it
            values.update(p=_plain(alert.percent), w=alert.window, wi=list(WINDOWS).index(alert.window) + 1)
        elif alert.condition in RANGE_CONDITIONS:
            assert alert.low is not None and alert.high is not None
            low, high = alert.low, alert.high
            values.update(lo=_plain(low), hi=_plain(high), lm=_plain(low - STEP), hp=_plain(high + STEP))
        else:
            assert alert.target_price is not None
            target = alert.target_price
            values.update(t=_plain(target), tm=_plain(target - STEP), tp=_plain(target + STEP))
    return json.dumps(values, separators=(",", ":"))


def member_alert_id(member: bytes) -> str:
    """The alert id of an index member, parked or not."""
    if member[:1] in PARKED_MARKS:
        member = member.split(b"\t", 1)[1]
    return member.split(b"\t", 1)[0].decode()


def _clean(value: str) -> str:
    """Tabs and line breaks separate the member's fields: never let a value contain one."""
    return value.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def expires_at_ms(event: AlertEvent) -> int | None:
    """When the alert expires, in epoch ms."""
    return int(event.expires_at.timestamp() * 1000) if event.expires_at else None


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
        assert event.target_price is not None  # v1-shaped: a level alert
        return cls(
            event.alert_id,
            event.user_id,
            event.email,
            event.symbol.upper(),
            event.condition,
            format(event.target_price, "f"),
            event.name or "",
            expires_at_ms(event),
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
        self._index_definition: AsyncScript = redis.register_script(INDEX_DEFINITION)
        self._unindex: AsyncScript = redis.register_script(UNINDEX_ALERT)

    def keys_of(self, symbol: str) -> list[str]:
        """The keys the scripts take for `symbol`: its keys (symbol_keys), its shard's definitions and tombstones,
        its window hash."""
        shard = shard_of(symbol, self.count)
        return [
            *symbol_keys(shard, symbol),
            names.eval_defs_key(shard),
            names.eval_done_key(shard),
            names.eval_window_key(shard, symbol),
        ]

    async def apply(self, event: AlertEvent, client: RedisClient | Pipeline | None = None) -> bool:
        """Add a created alert or a new version, remove a deleted or expired one; True if the index changed (False
        on a pipeline)."""
        if "\t" in event.alert_id or not event.alert_id or event.alert_id[:1].encode() in PARKED_MARKS:
            raise ValueError(f"unusable alert id {event.alert_id!r}")
        keys = self.keys_of(event.symbol.upper())
        target = "" if event.target_price is None else format(event.target_price, "f")
        reply: Any
        if event.type is AlertEventType.CREATED and event.is_compact():
            alert = IndexedAlert.from_event(event)
            args = [alert.alert_id, target, alert.member_rest(), alert.condition.value]
            reply = await self._index(keys=keys, args=args, client=client)
        elif event.type in (AlertEventType.CREATED, AlertEventType.UPDATED):
            previous = "" if event.previous_target_price is None else format(event.previous_target_price, "f")
            args = [
                event.alert_id,
                definition(event, expires_at_ms(event)),
                str(event.version),
                "1" if event.paused else "0",
                previous,
                str(len(WINDOWS)),
            ]
            reply = await self._index_definition(keys=keys, args=args, client=client)
        else:
            args = [event.alert_id, target, str(TOMBSTONE_TTL_S)]
            reply = await self._unindex(keys=keys, args=args, client=client)
        return not isinstance(client, Pipeline) and bool(reply)
