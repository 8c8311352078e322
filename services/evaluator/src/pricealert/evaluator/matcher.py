"""Evaluates a batch of ticks in one atomic script: take each reached alert out of the index, append its trigger."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from pricealert.common import names
from pricealert.common.consumer import Message
from pricealert.common.deadletter import describe
from pricealert.common.events import (
    MAX_PRICE_FRACTION_DIGITS,
    MAX_PRICE_INTEGER_DIGITS,
    MalformedEvent,
    RawFields,
    now_ms,
)
from pricealert.common.publisher import maxlen_for
from pricealert.evaluator.index import TOMBSTONE_TTL_S, UNPARKED_LUA

# Taking an alert out of the index and appending its trigger happen in one script, so a replica that
# dies at any instruction did both or neither: redelivered ticks can never fire an alert twice.
# Index keys are derived inside the script from the tick's symbol (standalone Redis, not Cluster).
EVALUATE_TICKS = (
    UNPARKED_LUA
    + """
local prefix, triggers, now, maxlen, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local summary, ticks_blob, ticks_stream, group, ids_blob = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local fired = {}

-- member: id, indexed_at, user_id, email, condition, target, expires_at, name (the rest)
local function parse(member)
  member = unparked(member)
  local id, indexed_at, user_id, email, condition, target, expires, name =
    string.match(member, '^([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t(.*)$')
  return {id = id, indexed_at = tonumber(indexed_at), user_id = user_id, email = email, condition = condition,
          target = target, expires_at = expires, name = name}
end

-- Orders two plain decimals ("65000.5", "0.00001") exactly: -1, 0 or 1. Scores are doubles, which cannot tell
-- 65000 from 65000.00000000000001: they only find the candidates, this decides.
local function compare(x, y)
  local dx, dy = tonumber(x), tonumber(y)
  if dx ~= dy then return dx < dy and -1 or 1 end  -- rounding to doubles keeps the order: only ties need digits
  local xi, xf = string.match(x, '^0*(%d*)%.?(%d*)$')
  local yi, yf = string.match(y, '^0*(%d*)%.?(%d*)$')
  if #xi ~= #yi then return #xi < #yi and -1 or 1 end
  x = xi .. xf .. string.rep('0', #yf - #xf)
  y = yi .. yf .. string.rep('0', #xf - #yf)
  -- Equal lengths now. Lua's < on strings follows the locale: compare 15-digit pieces as (exact) numbers.
  for k = 1, #x, 15 do
    local a, b = tonumber(string.sub(x, k, k + 14)), tonumber(string.sub(y, k, k + 14))
    if a ~= b then return a < b and -1 or 1 end
  end
  return 0
end

-- Within one score (one double) members sort by their bytes. A member a tick at that double did not reach is
-- "parked": rewritten as mark .. order key .. tab .. member, the order key sorting as its exact target does. Parked
-- above members ('~') sort after unparked ones, parked below members ('!') before; a tick walks a set nearest target
-- first and stops at the first parked member it does not reach, so unreached neighbours cost nothing per tick.
local function park(key, member, mark, target)
  local score = redis.call('ZSCORE', key, member)
  redis.call('ZREM', key, member)
  redis.call('ZADD', key, score, mark .. string.char(64 + #string.match(target, '^%d*')) .. target .. '\\t' .. member)
end

local function evaluate_symbol(sym, chunk)
  local cross, above, below = prefix .. 'cross:' .. sym, prefix .. 'above:' .. sym, prefix .. 'below:' .. sym

  -- Fires (or expires) the alert `a` in `member` of `key`; a tick older than its indexing does not judge it (false).
  local function fire(key, member, a, tick)
    if tick.stream_ms < a.indexed_at then return false end
    redis.call('ZREM', key, member)
    if a.expires_at ~= '' and tonumber(tick.exchange_time) > tonumber(a.expires_at) then
      redis.call('SET', prefix .. 'done:' .. a.id, 'expired', 'EX', ttl, 'NX')
      return
    end
    redis.call('SET', prefix .. 'done:' .. a.id, 'fired', 'EX', ttl, 'NX')
    redis.call('XADD', triggers, 'MAXLEN', '~', maxlen, '*',
      'trigger_id', a.id, 'alert_id', a.id, 'user_id', a.user_id, 'email', a.email, 'symbol', sym,
      'condition', a.condition, 'target_price', a.target, 'name', a.name, 'price', tick.price,
      'trade_id', tick.trade_id, 'exchange_time', tick.exchange_time, 'tick_received_at', tick.received_at,
      'fired_at', now)
    fired[#fired + 1] = a.id
    fired[#fired + 1] = sym
    fired[#fired + 1] = tick.price
    return true
  end

  -- Walks `key` nearest target first (`walk`: a range query down to `bound`) and judges each member exactly: fires
  -- it if the price reached it (`side` 1: at or above, -1: at or below), else parks it; stops at a parked miss.
  local function judge(key, walk, bound, side, mark, tick)
    local offset = 0  -- reached members too new to judge stay in front
    repeat
      local members = redis.call(walk, key, bound, tick.price, 'LIMIT', offset, 8)
      for _, member in ipairs(members) do
        local a = parse(member)
        if compare(tick.price, a.target) * side >= 0 then
          if not fire(key, member, a, tick) then offset = offset + 1 end
        elseif string.byte(member) == string.byte(mark) then
          return
        else
          park(key, member, mark, a.target)
        end
      end
    until #members < 8
  end

  -- The first tick after indexing fixes a cross alert's side; exactly at the target it fires.
  local function fix_cross_sides(tick)
    local members = redis.call('ZRANGE', cross, 0, -1, 'WITHSCORES')
    for j = 1, #members, 2 do
      local member = members[j]
      local a = parse(member)
      local order = compare(tick.price, a.target)
      if order == 0 then
        fire(cross, member, a, tick)
      elseif tick.stream_ms >= a.indexed_at then
        redis.call('ZREM', cross, member)
        redis.call('ZADD', order < 0 and above or below, members[j + 1], member)
      end
    end
  end

  local has_cross = redis.call('EXISTS', cross) == 1
  for price, trade_id, etime, received, stream_ms in
      string.gmatch(chunk, '(%S+) (%S+) (%S+) (%S+) (%d+)%-%d+\\n') do
    local tick = {price = price, trade_id = trade_id, exchange_time = etime,
                  received_at = received, stream_ms = tonumber(stream_ms)}
    if has_cross and redis.call('EXISTS', cross) == 1 then fix_cross_sides(tick) end
    judge(above, 'ZRANGEBYSCORE', '-inf', 1, '~', tick)
    judge(below, 'ZREVRANGEBYSCORE', '+inf', -1, '!', tick)
  end
end

-- summary lines "SYMBOL HIGH LOW START LENGTH": each symbol's extreme prices and where its ticks lie
for sym, high, low, start, length in string.gmatch(summary, '(%S+) (%S+) (%S+) (%d+) (%d+)\\n') do
  -- Fast path: nothing can fire unless the batch's extremes reach the nearest targets.
  local prefix_sym = prefix .. 'cross:' .. sym
  local may_fire = redis.call('EXISTS', prefix_sym) == 1
  if not may_fire then
    local nearest_above = redis.call('ZRANGE', prefix .. 'above:' .. sym, 0, 0, 'WITHSCORES')
    local nearest_below = redis.call('ZRANGE', prefix .. 'below:' .. sym, -1, -1, 'WITHSCORES')
    may_fire = (#nearest_above > 0 and tonumber(nearest_above[2]) <= tonumber(high))
      or (#nearest_below > 0 and tonumber(nearest_below[2]) >= tonumber(low))
  end
  if may_fire then
    evaluate_symbol(sym, string.sub(ticks_blob, tonumber(start), tonumber(start) + tonumber(length) - 1))
  end
end

-- Acknowledged in the same script as the triggers they caused: both happen, or neither.
local ids = {}
for id in string.gmatch(ids_blob, '%S+') do ids[#ids + 1] = id end
if #ids > 0 then redis.call('XACK', ticks_stream, group, unpack(ids)) end
return fired
"""
)

_SYMBOL = rb"[A-Z0-9]{1,32}"
# price (positive decimal), trade id, exchange time, received at, entry id
_PRICE = rb"(?=[0-9.]*[1-9])\d{1,%d}(?:\.\d{1,%d})?" % (MAX_PRICE_INTEGER_DIGITS, MAX_PRICE_FRACTION_DIGITS)
_LINE = _PRICE + rb" \d{1,20} \d{1,20} \d{1,20} \d{1,20}-\d{1,20}\n"
_ONE = re.compile(_SYMBOL + b" " + _LINE)
# One regex over the whole batch is far cheaper than one per tick; per-tick checks run only to name a culprit.
_ALL = re.compile(b"(?:" + _SYMBOL + b" " + _LINE + b")*")
MAX_BATCH = 4_000  # ids are unpacked onto the Lua stack for XACK


def _as_bytes(raw: RawFields) -> dict[bytes, bytes]:
    first = next(iter(raw), b"")
    if isinstance(first, bytes):
        return raw  # type: ignore[return-value]
    return {str(k).encode(): str(v).encode() for k, v in raw.items()}


def tick_line(message: Message) -> bytes:
    """The tick as "SYMBOL PRICE TRADE_ID EXCHANGE_TIME RECEIVED_AT ENTRY_ID\\n" (not yet validated)."""
    raw = _as_bytes(message.raw)
    try:
        return (
            b" ".join(
                [
                    raw[b"symbol"].upper(),
                    raw[b"price"],
                    raw[b"trade_id"],
                    raw[b"exchange_time"],
                    raw[b"received_at"],
                    message.id.encode(),
                ]
            )
            + b"\n"
        )
    except (KeyError, AttributeError) as exc:
        raise MalformedEvent(f"tick {message.id} lacks field {exc}") from exc


def validated_lines(messages: Sequence[Message]) -> list[bytes]:
    """Every tick's line; raises MalformedEvent naming the first tick that is not a well-formed trade."""
    lines = [tick_line(m) for m in messages]
    if _ALL.fullmatch(b"".join(lines)):
        return lines
    for message, line in zip(messages, lines, strict=True):
        if not _ONE.fullmatch(line):
            raise MalformedEvent(f"tick {message.id} has a malformed field: {describe(message.raw)}")
    raise MalformedEvent("a tick line broke the batch")  # unreachable: some line failed above


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Fired(NamedTuple):
    """One alert a batch fired: its id (its trigger's too), its symbol and the price of the tick that reached it."""

    alert_id: str
    symbol: str
    price: str


class Matcher:
    """Runs the evaluation script for a batch of tick entries in one round trip; it also acks them."""

    def __init__(self, redis: Redis, *, group: str = names.GROUP_EVALUATOR) -> None:
        self.redis = redis
        self.group = group
        self._evaluate: AsyncScript = redis.register_script(EVALUATE_TICKS)
        self._static_args = [names.EVAL_INDEX_PREFIX, names.TRIGGERS]

    async def evaluate(self, messages: Sequence[Message]) -> int:
        """Evaluate tick entries in stream order and acknowledge them; returns how many alerts fired."""
        return len(await self.fire(messages))

    async def fire(self, messages: Sequence[Message]) -> list[Fired]:
        """Evaluate tick entries in stream order and acknowledge them; returns the alerts that fired."""
        if not messages:
            return []
        if len(messages) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} ticks per batch")
        lines: dict[bytes, list[bytes]] = {}
        extremes: dict[bytes, list[tuple[float, bytes]]] = {}
        for line in validated_lines(messages):
            symbol, rest = line.split(b" ", 1)
            price = rest[: rest.index(b" ")]
            value = float(price)
            known = extremes.get(symbol)
            if known is None:
                lines[symbol] = [rest]
                extremes[symbol] = [(value, price), (value, price)]
                continue
            lines[symbol].append(rest)
            if value > known[0][0]:
                known[0] = (value, price)
            elif value < known[1][0]:
                known[1] = (value, price)
        summary, chunks, offset = [], [], 1
        for symbol, symbol_lines in lines.items():
            chunk = b"".join(symbol_lines)
            high, low = extremes[symbol]
            summary.append(b"%s %s %s %d %d\n" % (symbol, high[1], low[1], offset, len(chunk)))
            chunks.append(chunk)
            offset += len(chunk)
        args: list[bytes | str] = [
            *self._static_args,
            str(now_ms()),
            str(maxlen_for(names.TRIGGERS)),
            str(TOMBSTONE_TTL_S),
            b"".join(summary),
            b"".join(chunks),
            names.TICKS,
            self.group,
            " ".join(m.id for m in messages),
        ]
        reply = [_text(value) for value in await self._evaluate(keys=[], args=args)]
        return [Fired(reply[i], reply[i + 1], reply[i + 2]) for i in range(0, len(reply), 3)]
