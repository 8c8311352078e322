"""Evaluates ticks against the index in one atomic script per symbol: remove the alert, append its trigger."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from pricealert.common import names
from pricealert.common.events import Tick, now_ms
from pricealert.common.publisher import maxlen_for
from pricealert.evaluator.index import symbol_keys

TICK_ARGS = 5  # price, trade id, exchange time, received at, stream time (ms) of each tick

# Taking the alert out of the index and appending its trigger happen in one script, so a replica that
# dies at any instruction either did both or neither: redelivered ticks can never fire an alert twice.
EVALUATE_TICKS = """
local cross, above, below, alerts, done, triggers = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, maxlen, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local fired = 0

local function tick_at(i)
  local b = 4 + i * 5
  return {price = ARGV[b], trade_id = ARGV[b + 1], exchange_time = ARGV[b + 2],
          received_at = ARGV[b + 3], stream_ms = tonumber(ARGV[b + 4])}
end

-- A tick older than the alert's indexing (a redelivered backlog) must not judge it.
local function alert_of(id, tick)
  local raw = redis.call('HGET', alerts, id)
  if not raw then return nil, true end
  local a = cjson.decode(raw)
  if tick.stream_ms < a.indexed_at then return nil, false end
  return a, true
end

local function fire(id, tick)
  local a, current = alert_of(id, tick)
  if not current then return end
  redis.call('ZREM', above, id)
  redis.call('ZREM', below, id)
  redis.call('ZREM', cross, id)
  if not a then return end
  redis.call('HDEL', alerts, id)
  if a.expires_at ~= '' and tonumber(tick.exchange_time) > tonumber(a.expires_at) then
    redis.call('HSET', done, id, 'expired')
    return
  end
  redis.call('HSET', done, id, 'fired')
  redis.call('XADD', triggers, 'MAXLEN', '~', maxlen, '*',
    'trigger_id', id, 'alert_id', id, 'user_id', a.user_id, 'email', a.email, 'symbol', a.symbol,
    'condition', a.condition, 'target_price', a.target_price, 'name', a.name, 'price', tick.price,
    'trade_id', tick.trade_id, 'exchange_time', tick.exchange_time, 'tick_received_at', tick.received_at,
    'fired_at', now)
  fired = fired + 1
end

local function fix_cross_sides(tick)
  local members = redis.call('ZRANGE', cross, 0, -1, 'WITHSCORES')
  local price = tonumber(tick.price)
  for j = 1, #members, 2 do
    local id, target = members[j], tonumber(members[j + 1])
    local a, current = alert_of(id, tick)
    if current then
      if price == target or not a then
        fire(id, tick)
      else
        redis.call('ZREM', cross, id)
        redis.call('ZADD', price < target and above or below, members[j + 1], id)
      end
    end
  end
end

-- Fast path: nothing can fire unless the batch's extremes reach the nearest targets.
local high, low = nil, nil
for i = 0, n - 1 do
  local p = tonumber(ARGV[4 + i * 5])
  if high == nil or p > high then high = p end
  if low == nil or p < low then low = p end
end
local nearest_above = redis.call('ZRANGE', above, 0, 0, 'WITHSCORES')
local nearest_below = redis.call('ZRANGE', below, -1, -1, 'WITHSCORES')
local above_reached = #nearest_above > 0 and tonumber(nearest_above[2]) <= high
local below_reached = #nearest_below > 0 and tonumber(nearest_below[2]) >= low
if redis.call('ZCARD', cross) == 0 and not above_reached and not below_reached then return 0 end

for i = 0, n - 1 do
  local tick = tick_at(i)
  if redis.call('ZCARD', cross) > 0 then fix_cross_sides(tick) end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', above, '-inf', tick.price)) do fire(id, tick) end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', below, tick.price, '+inf')) do fire(id, tick) end
end
return fired
"""


def _stream_ms(entry_id: str) -> str:
    return entry_id.split("-", 1)[0]


class Matcher:
    """Runs the evaluation script for a batch of ticks, one call per symbol, in one round trip."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._evaluate: AsyncScript = redis.register_script(EVALUATE_TICKS)

    async def evaluate(self, ticks: Sequence[tuple[str, Tick]]) -> int:
        """Evaluate (entry id, tick) pairs in stream order; returns how many alerts fired."""
        by_symbol: dict[str, list[str]] = {}
        for entry_id, tick in ticks:
            by_symbol.setdefault(tick.symbol.upper(), []).extend([
                format(tick.price, "f"), str(tick.trade_id), str(tick.exchange_time), str(tick.received_at),
                _stream_ms(entry_id),
            ])
        if not by_symbol:
            return 0
        header = [str(now_ms()), str(maxlen_for(names.TRIGGERS))]
        async with self.redis.pipeline(transaction=False) as pipe:
            for symbol, args in by_symbol.items():
                keys = [*symbol_keys(symbol), names.TRIGGERS]
                await self._evaluate(keys=keys, args=[*header, str(len(args) // TICK_ARGS), *args], client=pipe)
            results = await pipe.execute()
        return sum(int(r) for r in results)
