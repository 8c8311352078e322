-- Needs member.lua in front. Takes each reached alert out of the index and appends its trigger (matcher.py).
-- One shard's batch; every key is in KEYS and carries the shard's hash tag. KEYS: the shard's owner key, ticks
-- stream, triggers stream and tombstones, then per summary line (symbol) its cross, above and below sets.
-- ARGV: owner token, now (ms), triggers MAXLEN, tombstone lifetime (s), summary, tick lines, group, entry ids.
-- Fenced: if the lease is not the caller's the script writes nothing and returns 0 (a list otherwise).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ticks_stream, triggers, done = KEYS[2], KEYS[3], KEYS[4]
local now, maxlen, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local summary, ticks_blob, group, ids_blob = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local fired = {}
local tombstone_expiry = string.format('%.0f', tonumber(now) + ttl * 1000)
local trimmed = false

-- A tombstone for an alert that left the index; expired ones are trimmed first (once per batch, off the fast path).
local function bury(alert_id)
  if not trimmed then
    redis.call('ZREMRANGEBYSCORE', done, '-inf', now)
    trimmed = true
  end
  redis.call('ZADD', done, 'NX', tombstone_expiry, alert_id)
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
  redis.call('ZADD', key, score, mark .. string.char(64 + #string.match(target, '^%d*')) .. target .. '\t' .. member)
end

local function evaluate_symbol(sym, chunk, cross, above, below)

  -- Fires (or expires) the alert `a` in `member` of `key` (true: it left the index); a tick older than its indexing
  -- does not judge it (false: it stays in front of the walk).
  local function fire(key, member, a, tick)
    if tick.stream_ms < a.indexed_at then return false end
    redis.call('ZREM', key, member)
    if a.expires_at ~= '' and tonumber(tick.exchange_time) > tonumber(a.expires_at) then
      bury(a.alert_id)
      return true  -- out of the index: the walk's offset must not count it
    end
    bury(a.alert_id)
    -- The fields of events.Trigger.FIELDS, in order; a trigger's id is its alert's (events.trigger_id_for).
    redis.call('XADD', triggers, 'MAXLEN', '~', maxlen, '*',
      'alert_id', a.alert_id, 'user_id', a.user_id, 'email', a.email, 'symbol', sym, 'condition', a.condition,
      'target_price', a.target_price, 'name', a.name, 'trigger_id', a.alert_id, 'price', tick.price,
      'trade_id', tick.trade_id, 'exchange_time', tick.exchange_time, 'tick_received_at', tick.received_at,
      'fired_at', now)
    fired[#fired + 1] = a.alert_id
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
        if compare(tick.price, a.target_price) * side >= 0 then
          if not fire(key, member, a, tick) then offset = offset + 1 end
        elseif string.byte(member) == string.byte(mark) then
          return
        else
          park(key, member, mark, a.target_price)
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
      local order = compare(tick.price, a.target_price)
      if order == 0 then
        fire(cross, member, a, tick)
      elseif tick.stream_ms >= a.indexed_at then
        redis.call('ZREM', cross, member)
        redis.call('ZADD', order < 0 and above or below, members[j + 1], member)
      end
    end
  end

  local has_cross = redis.call('EXISTS', cross) == 1
  -- tick lines (matcher.py): a tick's fields after its symbol, in events.Tick.FIELDS order, then its entry id
  for price, trade_id, etime, received, stream_ms in
      string.gmatch(chunk, '(%S+) (%S+) (%S+) (%S+) (%d+)%-%d+\n') do
    local tick = {price = price, trade_id = trade_id, exchange_time = etime,
                  received_at = received, stream_ms = tonumber(stream_ms)}
    if has_cross and redis.call('EXISTS', cross) == 1 then fix_cross_sides(tick) end
    judge(above, 'ZRANGEBYSCORE', '-inf', 1, '~', tick)
    judge(below, 'ZREVRANGEBYSCORE', '+inf', -1, '!', tick)
  end
end

-- summary lines "SYMBOL HIGH LOW START LENGTH": each symbol's extreme prices and where its ticks lie; the n-th
-- line's keys (n from 0) are KEYS[3n + 5 .. 3n + 7] (cross, above, below)
local n = 0
for sym, high, low, start, length in string.gmatch(summary, '(%S+) (%S+) (%S+) (%d+) (%d+)\n') do
  local cross, above, below = KEYS[3 * n + 5], KEYS[3 * n + 6], KEYS[3 * n + 7]
  n = n + 1
  -- Fast path: nothing can fire unless the batch's extremes reach the nearest targets.
  local may_fire = redis.call('EXISTS', cross) == 1
  if not may_fire then
    local nearest_above = redis.call('ZRANGE', above, 0, 0, 'WITHSCORES')
    local nearest_below = redis.call('ZRANGE', below, -1, -1, 'WITHSCORES')
    may_fire = (#nearest_above > 0 and tonumber(nearest_above[2]) <= tonumber(high))
      or (#nearest_below > 0 and tonumber(nearest_below[2]) >= tonumber(low))
  end
  if may_fire then
    evaluate_symbol(sym, string.sub(ticks_blob, tonumber(start), tonumber(start) + tonumber(length) - 1),
      cross, above, below)
  end
end
-- Acknowledged in the same script as the triggers they caused: both happen, or neither.
local ids = {}
for id in string.gmatch(ids_blob, '%S+') do ids[#ids + 1] = id end
if #ids > 0 then redis.call('XACK', ticks_stream, group, unpack(ids)) end
return fired
