"""Evaluates a batch of ticks in one atomic script: take each reached alert out of the index, append its trigger."""

from __future__ import annotations

import re
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from pricealert.common import names
from pricealert.common.consumer import Message
from pricealert.common.events import MalformedEvent, now_ms
from pricealert.common.publisher import maxlen_for

# Taking an alert out of the index and appending its trigger happen in one script, so a replica that
# dies at any instruction did both or neither: redelivered ticks can never fire an alert twice.
# Index keys are derived inside the script from the tick's symbol (standalone Redis, not Cluster).
EVALUATE_TICKS = """
local prefix, alerts, done, triggers = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, maxlen = ARGV[5], ARGV[6]
local fired = 0

-- ticks arrive as lines "SYMBOL PRICE TRADE_ID EXCHANGE_TIME RECEIVED_AT STREAM_MS", in stream order
local by_symbol, order = {}, {}
for sym, price, trade_id, etime, received, stream_ms in
    string.gmatch(ARGV[7], '(%S+) (%S+) (%S+) (%S+) (%S+) (%S+)\\n') do
  local ticks = by_symbol[sym]
  if not ticks then
    ticks = {}
    by_symbol[sym] = ticks
    order[#order + 1] = sym
  end
  ticks[#ticks + 1] = {price = price, value = tonumber(price), trade_id = trade_id, exchange_time = etime,
                       received_at = received, stream_ms = tonumber(stream_ms)}
end

local function evaluate_symbol(sym, ticks)
  local cross, above, below = prefix .. 'cross:' .. sym, prefix .. 'above:' .. sym, prefix .. 'below:' .. sym

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

  -- The first tick after indexing fixes a cross alert's side; exactly at the target it fires.
  local function fix_cross_sides(tick)
    local members = redis.call('ZRANGE', cross, 0, -1, 'WITHSCORES')
    for j = 1, #members, 2 do
      local id, target = members[j], tonumber(members[j + 1])
      local a, current = alert_of(id, tick)
      if current then
        if tick.value == target or not a then
          fire(id, tick)
        else
          redis.call('ZREM', cross, id)
          redis.call('ZADD', tick.value < target and above or below, members[j + 1], id)
        end
      end
    end
  end

  -- Fast path: nothing can fire unless the batch's extremes reach the nearest targets.
  local high, low = ticks[1].value, ticks[1].value
  for i = 2, #ticks do
    if ticks[i].value > high then high = ticks[i].value end
    if ticks[i].value < low then low = ticks[i].value end
  end
  local has_cross = redis.call('EXISTS', cross) == 1
  if not has_cross then
    local nearest_above = redis.call('ZRANGE', above, 0, 0, 'WITHSCORES')
    local nearest_below = redis.call('ZRANGE', below, -1, -1, 'WITHSCORES')
    local above_reached = #nearest_above > 0 and tonumber(nearest_above[2]) <= high
    local below_reached = #nearest_below > 0 and tonumber(nearest_below[2]) >= low
    if not above_reached and not below_reached then return end
  end

  for _, tick in ipairs(ticks) do
    if has_cross and redis.call('EXISTS', cross) == 1 then fix_cross_sides(tick) end
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', above, '-inf', tick.price)) do fire(id, tick) end
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', below, tick.price, '+inf')) do fire(id, tick) end
  end
end

for _, sym in ipairs(order) do evaluate_symbol(sym, by_symbol[sym]) end
return fired
"""

_SYMBOL = re.compile(r"[A-Z0-9]{1,32}")
_PRICE = re.compile(r"\d{1,20}(\.\d{1,18})?")
_INTEGER = re.compile(r"\d{1,20}")


def tick_line(message: Message) -> str:
    """The script's line for one tick entry; raises MalformedEvent for anything it could misread."""
    f = message.fields
    try:
        symbol, price = f["symbol"].upper(), f["price"]
        trade_id, exchange_time, received_at = f["trade_id"], f["exchange_time"], f["received_at"]
    except KeyError as exc:
        raise MalformedEvent(f"tick {message.id} lacks field {exc}") from exc
    if not (_SYMBOL.fullmatch(symbol) and _PRICE.fullmatch(price) and _INTEGER.fullmatch(trade_id)
            and _INTEGER.fullmatch(exchange_time) and _INTEGER.fullmatch(received_at)):
        raise MalformedEvent(f"tick {message.id} has a malformed field: {f}")
    if float(price) <= 0:
        raise MalformedEvent(f"tick {message.id} has a non-positive price {price}")
    return f"{symbol} {price} {trade_id} {exchange_time} {received_at} {message.id.split('-', 1)[0]}\n"


class Matcher:
    """Runs the evaluation script for a batch of tick entries in one round trip."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._evaluate: AsyncScript = redis.register_script(EVALUATE_TICKS)
        self._static_args = [names.EVAL_INDEX_PREFIX, names.EVAL_ALERTS, names.EVAL_DONE, names.TRIGGERS]

    async def evaluate(self, messages: Sequence[Message]) -> int:
        """Evaluate tick entries in stream order; returns how many alerts fired."""
        if not messages:
            return 0
        blob = "".join(tick_line(m) for m in messages)
        args = [*self._static_args, str(now_ms()), str(maxlen_for(names.TRIGGERS)), blob]
        return int(await self._evaluate(keys=[], args=args))
