-- Needs member.lua and defs.lua in front. Exact decimal order, parking, and firing: the trigger every firing appends
-- (evaluate_ticks.lua sets S.triggers, S.maxlen, S.now, S.ttl, S.limit and S.fired before any of it runs).

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
-- "parked": rewritten as mark .. order key .. tab .. member, the order key sorting as its exact threshold does.
-- Parked above members ('~') sort after unparked ones, parked below members ('!') before; a tick walks a set
-- nearest threshold first and stops at the first parked member it does not reach, so unreached neighbours cost
-- nothing per tick.
local function park(key, member, mark, threshold)
  local score = redis.call('ZSCORE', key, member)
  redis.call('ZREM', key, member)
  redis.call('ZADD', key, score, parked_form(mark, threshold, member))
end

-- Appends a firing's trigger: f holds the values of events.Trigger.FIELDS, in that order ('' for none).
local function append_trigger(f)
  redis.call('XADD', S.triggers, 'MAXLEN', '~', S.maxlen, '*',
    'alert_id', f.alert_id, 'user_id', f.user_id, 'email', f.email, 'symbol', f.symbol, 'condition', f.condition,
    'target_price', f.target_price, 'name', f.name, 'low', f.low, 'high', f.high, 'percent', f.percent,
    'window', f.window, 'frequency', f.frequency, 'cooldown_s', f.cooldown_s, 'message', f.message,
    'version', f.version, 'channels', f.channels, 'trigger_id', f.trigger_id, 'price', f.price, 'trade_id', f.trade_id,
    'exchange_time', f.exchange_time, 'tick_received_at', f.tick_received_at, 'fired_at', f.fired_at,
    'firing', f.firing, 'reference_price', f.reference_price, 'change_pct', f.change_pct, 'paused', f.paused,
    'hour_firings', f.hour_firings)
  local fired = S.fired
  fired[#fired + 1] = f.alert_id
  fired[#fired + 1] = f.symbol
  fired[#fired + 1] = f.price
  fired[#fired + 1] = f.trigger_id
end

-- The trigger of a v1-shaped member `a` (member.lua's parse): its one firing's id is the alert's.
local function fire_compact(a, sym, tick)
  append_trigger({alert_id = a.alert_id, user_id = a.user_id, email = a.email, symbol = sym,
    condition = a.condition, target_price = a.target_price, name = a.name, low = '', high = '', percent = '',
    window = '', frequency = 'once', cooldown_s = '', message = '', version = '1', channels = '',
    trigger_id = a.alert_id,
    price = tick.price, trade_id = tick.trade_id, exchange_time = tick.exchange_time,
    tick_received_at = tick.received_at, fired_at = S.now, firing = '1', reference_price = '', change_pct = '',
    paused = '0', hour_firings = ''})
end

-- Fires alert d (a definition) at `tick`, or spends the crossing inside its cooldown. Returns 'gone' (it left the
-- index: expired, fired once, or paused by the hourly limit), 'fired' or 'spent'; the caller moves it on otherwise.
local function fire_def(K, d, sym, tick, reference, change)
  local t = tonumber(tick.exchange_time)
  if d.x ~= '' and t > tonumber(d.x) then
    unplace(K, d)
    redis.call('HDEL', S.defs, d.id)
    bury(d.id, S.now, S.ttl)
    return 'gone'
  end
  if t < d.nb then return 'spent' end
  local every = d.f == 'every_time'
  local paused = false
  d.k = d.k + 1
  if every then
    if d.hs == 0 or t - d.hs >= 3600000 then d.hs, d.hc = t, 0 end
    d.hc = d.hc + 1
    paused = d.hc >= S.limit
  end
  append_trigger({alert_id = d.id, user_id = d.u, email = d.e, symbol = sym, condition = d.c, target_price = d.t,
    name = d.n, low = d.lo, high = d.hi, percent = d.p, window = d.w, frequency = d.f, cooldown_s = d.cds,
    message = d.m, version = tostring(d.v), channels = d.ch or '', trigger_id = every and (d.id .. ':' .. d.k) or d.id,
    price = tick.price, trade_id = tick.trade_id, exchange_time = tick.exchange_time,
    tick_received_at = tick.received_at, fired_at = S.now, firing = tostring(d.k), reference_price = reference or '',
    change_pct = change or '', paused = paused and '1' or '0', hour_firings = every and tostring(d.hc) or ''})
  if not every then
    unplace(K, d)
    redis.call('HDEL', S.defs, d.id)
    bury(d.id, S.now, S.ttl)
    return 'gone'
  end
  if paused then
    unplace(K, d)
    d.st = 'paused'
    save_def(d)
    return 'gone'
  end
  d.nb = t + d.cd
  return 'fired'
end

-- Moves alert d to the state `state`: out of the sets of the old one, into those of the new one, saved.
local function move_to(K, d, state)
  unplace(K, d)
  d.st = state
  place(K, d)
  save_def(d)
end
