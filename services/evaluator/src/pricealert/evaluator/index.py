"""The index of active alerts in Redis: sorted sets per symbol and direction, scored by target price.

Each member carries the whole alert ("id, indexed_at, user_id, email, condition, target, expires_at,
name", tab-separated, name last), so firing needs no second lookup and no per-alert hash entry. A member
the evaluation script parked (see matcher.py) has a mark, an order key and a tab in front of that.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from pricealert.common import names
from pricealert.common.events import AlertEvent, AlertEventType, Condition

TOMBSTONE_TTL_S = 30 * 24 * 3600  # longer than any redelivery or resync of an alert event
# Marks of parked members: they sort after (above) or before (below) every alert id among equal scores.
PARKED_MARKS = (b"~", b"!")

# The member as indexed, whether parked or not (Lua; shared by the index's and the evaluation's scripts).
UNPARKED_LUA = """
local function unparked(member)
  local first = string.byte(member)
  if first == 126 or first == 33 then return string.sub(member, string.find(member, '\\t', 1, true) + 1) end
  return member
end
"""

# Adds an alert unless it left the index already (a late create) or is indexed already (a redelivery).
INDEX_ALERT = (
    UNPARKED_LUA
    + """
local prefix, id, target, rest, symbol = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', prefix .. 'done:' .. id) == 1 then return 0 end
for _, direction in ipairs({'cross:', 'above:', 'below:'}) do
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', prefix .. direction .. symbol, target, target)) do
    if string.sub(unparked(member), 1, #id + 1) == id .. '\\t' then return 0 end
  end
end
local now = redis.call('TIME')
local indexed_at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', prefix .. ARGV[6] .. ':' .. symbol, target, id .. '\\t' .. indexed_at .. '\\t' .. rest)
return 1
"""
)

# Takes an alert out of the index for good and leaves a tombstone saying why.
UNINDEX_ALERT = (
    UNPARKED_LUA
    + """
local prefix, id, target, symbol, reason, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local removed = 0
for _, direction in ipairs({'cross:', 'above:', 'below:'}) do
  local key = prefix .. direction .. symbol
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', key, target, target)) do
    if string.sub(unparked(member), 1, #id + 1) == id .. '\\t' then
      removed = removed + redis.call('ZREM', key, member)
    end
  end
end
redis.call('SET', prefix .. 'done:' .. id, reason, 'EX', ttl, 'NX')
return removed
"""
)


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
        return "\t".join(
            [
                _clean(self.user_id),
                _clean(self.email),
                self.condition.value,
                self.target_price,
                expires,
                _clean(self.name),
            ]
        )


class AlertIndex:
    """Applies alert events to the index; every operation is idempotent."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._index: AsyncScript = redis.register_script(INDEX_ALERT)
        self._unindex: AsyncScript = redis.register_script(UNINDEX_ALERT)

    async def apply(self, event: AlertEvent, client: Redis | Pipeline | None = None) -> bool:
        """Add a created alert, remove a deleted or expired one; True if the index changed (False on a pipeline)."""
        symbol, target = event.symbol.upper(), format(event.target_price, "f")
        if "\t" in event.alert_id or not event.alert_id or event.alert_id[:1].encode() in PARKED_MARKS:
            raise ValueError(f"unusable alert id {event.alert_id!r}")
        if event.type is AlertEventType.CREATED:
            alert = IndexedAlert.from_event(event)
            args = [names.EVAL_INDEX_PREFIX, alert.alert_id, target, alert.member_rest(), symbol, alert.condition.value]
            reply = await self._index(keys=[], args=args, client=client)
        else:
            reason = "deleted" if event.type is AlertEventType.DELETED else "expired"
            args = [names.EVAL_INDEX_PREFIX, event.alert_id, target, symbol, reason, str(TOMBSTONE_TTL_S)]
            reply = await self._unindex(keys=[], args=args, client=client)
        return not isinstance(client, Pipeline) and bool(reply)
