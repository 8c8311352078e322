"""The index of active alerts in Redis: sorted sets per symbol and direction, scored by target price."""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from pricealert.common import names
from pricealert.common.events import AlertEvent, AlertEventType, Condition

# Adds an alert unless it already left the index (a delete or fire seen before a late create).
INDEX_ALERT = """
if redis.call('HEXISTS', KEYS[5], ARGV[1]) == 1 then return 0 end
local now = redis.call('TIME')
local payload = cjson.decode(ARGV[4])
payload['indexed_at'] = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HSET', KEYS[4], ARGV[1], cjson.encode(payload))
local key = KEYS[1]
if ARGV[2] == 'above' then key = KEYS[2] elseif ARGV[2] == 'below' then key = KEYS[3] end
redis.call('ZADD', key, ARGV[3], ARGV[1])
return 1
"""

# Takes an alert out of the index for good and remembers why.
UNINDEX_ALERT = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if redis.call('HEXISTS', KEYS[5], ARGV[1]) == 0 then redis.call('HSET', KEYS[5], ARGV[1], ARGV[2]) end
return 1
"""


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
        return cls(event.alert_id, event.user_id, event.email, event.symbol.upper(), event.condition,
                   format(event.target_price, "f"), event.name or "", expires)

    def payload(self) -> str:
        """JSON kept in the alerts hash (read by the evaluation script)."""
        return json.dumps({
            "user_id": self.user_id, "email": self.email, "symbol": self.symbol,
            "condition": self.condition.value, "target_price": self.target_price, "name": self.name,
            "expires_at": self.expires_at_ms if self.expires_at_ms is not None else "",
        }, separators=(",", ":"))


def symbol_keys(symbol: str) -> list[str]:
    """The keys every index script touches for `symbol`, in script order."""
    return [names.eval_cross_key(symbol), names.eval_above_key(symbol), names.eval_below_key(symbol),
            names.EVAL_ALERTS, names.EVAL_DONE]


class AlertIndex:
    """Applies alert events to the index; every operation is idempotent."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._index: AsyncScript = redis.register_script(INDEX_ALERT)
        self._unindex: AsyncScript = redis.register_script(UNINDEX_ALERT)

    async def apply(self, event: AlertEvent, client: Redis | Pipeline | None = None) -> None:
        """Add a created alert; remove a deleted or expired one (queued on `client` when it is a pipeline)."""
        keys = symbol_keys(event.symbol.upper())
        if event.type is AlertEventType.CREATED:
            alert = IndexedAlert.from_event(event)
            await self._index(keys=keys, args=[alert.alert_id, alert.condition.value, alert.target_price,
                                               alert.payload()], client=client)
        else:
            reason = "deleted" if event.type is AlertEventType.DELETED else "expired"
            await self._unindex(keys=keys, args=[event.alert_id, reason], client=client)
