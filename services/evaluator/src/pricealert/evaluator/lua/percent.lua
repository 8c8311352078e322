-- Needs member.lua, defs.lua and fire.lua in front. Percent moves: each symbol's rolling windows (60 buckets each,
-- kept in its window hash), the percent sets walked per trade, and the recurring alerts measuring from their last
-- firing (K.own). docs/conditions.md has the rules; S.sizes holds the windows' bucket lengths in ms.

local function decimal_or_nil(text)
  if text == '-' then return nil end
  return text
end

local function lower(a, b)
  if not a then return b end
  if not b then return a end
  return tonumber(b) < tonumber(a) and b or a
end

local function higher(a, b)
  if not a then return b end
  if not b then return a end
  return tonumber(b) > tonumber(a) and b or a
end

-- A window's extremes are kept as decimal strings (for triggers) beside their numbers (for comparing).
local function extreme(text)
  if text == '-' then return nil, nil end
  return text, tonumber(text)
end

-- The symbol's windows: W[wi] = {cur = bucket, lo, hi (of the current bucket), plo, phi (of the 59 before)}, each
-- extreme x with its number xn.
local function load_windows(key)
  local W = {latest = 0}
  local summary = redis.call('HGET', key, 's')
  local parts = {}
  if summary then
    for part in string.gmatch(summary, '%S+') do parts[#parts + 1] = part end
    W.latest = tonumber(parts[1])
  end
  for wi = 1, #S.sizes do
    local w = {cur = -1}
    if summary then
      local o = 2 + (wi - 1) * 5
      w.cur = tonumber(parts[o])
      w.lo, w.lon = extreme(parts[o + 1])
      w.hi, w.hin = extreme(parts[o + 2])
      w.plo, w.plon = extreme(parts[o + 3])
      w.phi, w.phin = extreme(parts[o + 4])
    end
    W[wi] = w
  end
  return W
end

local function save_windows(key, W)
  local parts = {string.format('%.0f', W.latest)}
  for wi = 1, #S.sizes do
    local w = W[wi]
    parts[#parts + 1] = string.format('%.0f %s %s %s %s', w.cur, w.lo or '-', w.hi or '-', w.plo or '-', w.phi or '-')
  end
  redis.call('HSET', key, 's', table.concat(parts, ' '))
  -- Kept while the symbol has percent alerts and two days past the last one (evaluate_ticks.lua updates it while
  -- the hash exists); renewed when a bucket ends rather than every batch.
  if W.advanced and W.watched then redis.call('PEXPIRE', key, 2 * 86400000) end
end

-- Window wi moves to bucket b: the finished bucket is stored, those out of reach dropped, the 59 before summed up.
local function advance(key, wi, w, b)
  if w.cur >= 0 then
    if w.lo then redis.call('HSET', key, wi .. ':' .. w.cur, w.lo .. ' ' .. w.hi) end
    local gone = {}
    for bucket = w.cur - 59, math.min(w.cur, b - 60) do gone[#gone + 1] = wi .. ':' .. bucket end
    if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
  end
  local fields = {}
  for bucket = math.max(b - 59, w.cur - 59), math.min(b - 1, w.cur) do fields[#fields + 1] = wi .. ':' .. bucket end
  w.plo, w.plon, w.phi, w.phin = nil, nil, nil, nil
  if #fields > 0 then
    for _, value in ipairs(redis.call('HMGET', key, unpack(fields))) do
      if value then
        local lo, hi = string.match(value, '^(%S+) (%S+)$')
        local lon, hin = tonumber(lo), tonumber(hi)
        if not w.plon or lon < w.plon then w.plo, w.plon = lo, lon end
        if not w.phin or hin > w.phin then w.phi, w.phin = hi, hin end
      end
    end
  end
  w.cur, w.lo, w.lon, w.hi, w.hin = b, nil, nil, nil, nil
end

-- Adds trades of one second of (clamped) trade time t, lowest lo and highest hi (lon, hin their numbers), to every
-- window: each bucket length is a whole number of seconds, so they all lie in one bucket of each window.
local function add_group(key, W, t, lo, lon, hi, hin)
  for wi = 1, #S.sizes do
    local w = W[wi]
    local b = math.floor(t / S.sizes[wi])
    if b ~= w.cur then
      advance(key, wi, w, b)
      W.advanced = true
    end
    if not w.lon or lon < w.lon then w.lo, w.lon = lo, lon end
    if not w.hin or hin > w.hin then w.hi, w.hin = hi, hin end
  end
end

-- Adds a trade (price p, its number pn) to every window.
local function add_trade(key, W, p, pn, exchange_time)
  local t = math.max(tonumber(exchange_time), W.latest)
  W.latest = t
  add_group(key, W, t, p, pn, p, pn)
end

-- Adds a symbol's tick lines (matcher.py) to every window a second of trade time at a time: the same windows as
-- trade by trade, for a batch that can fire nothing.
local function add_by_second(key, W, chunk)
  local second, t, lo, lon, hi, hin
  for price, exchange_time in string.gmatch(chunk, '(%S+) %S+ (%d+) [^\n]*\n') do
    local time = math.max(tonumber(exchange_time), W.latest)
    W.latest = time
    local pn = tonumber(price)
    local s = math.floor(time / 1000)
    if s ~= second then
      if second then add_group(key, W, t, lo, lon, hi, hin) end
      second, lo, lon, hi, hin = s, price, pn, price, pn
    else
      if pn < lon then lo, lon = price, pn end
      if pn > hin then hi, hin = price, pn end
    end
    t = time
  end
  if second then add_group(key, W, t, lo, lon, hi, hin) end
end

-- A whole batch of trades in one step when each lies in every window's current bucket (the batch's `latest` trade
-- time, as the trades' times are at least W.latest): false (nothing changed) otherwise.
local function add_batch(W, high, low, latest)
  local t = math.max(latest, W.latest)
  for wi = 1, #S.sizes do
    local w = W[wi]
    if w.cur < 0 or math.floor(W.latest / S.sizes[wi]) ~= w.cur or math.floor(t / S.sizes[wi]) ~= w.cur then
      return false
    end
  end
  W.latest = t
  local highn, lown = tonumber(high), tonumber(low)
  for wi = 1, #S.sizes do
    local w = W[wi]
    if not w.lon or lown < w.lon then w.lo, w.lon = low, lown end
    if not w.hin or highn > w.hin then w.hi, w.hin = high, highn end
  end
  return true
end

-- Whether any shared percent alert may fire within a batch of trades between `low` and `high`: the windows' lows
-- can only fall to the batch's low and their highs rise to its high, whatever the order of the trades.
local function may_fire_percent(W, mins, high, low)
  local highn, lown = tonumber(high), tonumber(low)
  for wi, smallest in pairs(mins) do
    local w = W[wi]
    local lon, hin = lown, highn
    if w.lon and w.lon < lon then lon = w.lon end
    if w.plon and w.plon < lon then lon = w.plon end
    if w.hin and w.hin > hin then hin = w.hin end
    if w.phin and w.phin > hin then hin = w.phin end
    local rise, fall = highn * 100 / lon - 100, 100 - lown * 100 / hin
    if (smallest.up and rise + 1e-9 >= smallest.up) or (smallest.down and fall + 1e-9 >= smallest.down)
        or (smallest.move and math.max(rise, fall) + 1e-9 >= smallest.move) then
      return true
    end
  end
  return false
end

-- Window wi's low and high at the last trade added (that trade included): text and number of each.
local function window_range(w)
  local lo, lon, hi, hin = w.lo, w.lon, w.hi, w.hin
  if w.plon and w.plon < lon then lo, lon = w.plo, w.plon end
  if w.phin and w.phin > hin then hi, hin = w.phi, w.phin end
  return lo, lon, hi, hin
end

-- Whether alert d's move is reached at price p from low / high: 'up', 'down' or nil (the doc's formula, in doubles).
local function reached(d, p, low, high)
  local percent = tonumber(d.p)
  if d.c ~= 'pct_down' and p * 100 >= tonumber(low) * (100 + percent) then return 'up' end
  if d.c ~= 'pct_up' and p * 100 <= tonumber(high) * (100 - percent) then return 'down' end
  return nil
end

-- Fires percent alert d at `tick`, its move measured from `low` (up) or `high` (down); a recurring one then
-- measures from this firing (K.own, kept in `owns` for the rest of the batch).
local function fire_move(K, d, sym, tick, direction, low, high, W, owns)
  local reference = direction == 'up' and low or high
  local change = string.format('%.2f', (tonumber(tick.price) / tonumber(reference) - 1) * 100)
  if fire_def(K, d, sym, tick, reference, change) == 'gone' then
    d.st = 'gone'
    return
  end
  if d.st ~= 'own' then
    unplace(K, d)
    d.st = 'own'
    place(K, d)
    owns[#owns + 1] = d
  end
  d.ol, d.oh, d.fb, d.dirty = tick.price, tick.price, W[d.wi].cur, nil
  save_def(d)
end

-- Walks the percent set `set` (up, down, move) of window wi: every member whose percent the move reaches fires.
local function walk_percent(K, set, wi, move, sym, tick, lows, highs, W, owns)
  local key, base, offset = K[set], wi * PCT_SPAN, 0
  local p = tonumber(tick.price)
  repeat
    local ids = redis.call('ZRANGEBYSCORE', key, base, base + math.min(move + 1e-6, PCT_SPAN - 1), 'LIMIT', offset, 8)
    for _, id in ipairs(ids) do
      local d = load_def(id)
      local direction = d and reached(d, p, lows[wi], highs[wi])
      if not d then
        redis.call('ZREM', key, id)
      elseif tick.stream_ms < d.at or not direction or tonumber(tick.exchange_time) < d.nb then
        offset = offset + 1
      else
        fire_move(K, d, sym, tick, direction, lows[wi], highs[wi], W, owns)
      end
    end
  until #ids < 8
end

-- Window wi's shared percent sets at one trade: each walked only when its smallest percent is reached.
local function judge_window(K, wi, smallest, sym, tick, lows, highs, W, owns)
  local p = tonumber(tick.price)
  local lo, lon, hi, hin = window_range(W[wi])
  lows[wi], highs[wi] = lo, hi
  local rise, fall = p * 100 / lon - 100, 100 - p * 100 / hin
  if smallest.up and rise + 1e-9 >= smallest.up then
    walk_percent(K, 'up', wi, rise, sym, tick, lows, highs, W, owns)
  end
  if smallest.down and fall + 1e-9 >= smallest.down then
    walk_percent(K, 'down', wi, fall, sym, tick, lows, highs, W, owns)
  end
  local most = math.max(rise, fall)
  if smallest.move and most + 1e-9 >= smallest.move then
    walk_percent(K, 'move', wi, most, sym, tick, lows, highs, W, owns)
  end
end

-- One trade against the symbol's percent alerts: the shared sets, then the recurring ones measuring from their
-- last firing.
local function judge_percent(K, sym, tick, W, mins, owns)
  local p = tonumber(tick.price)
  local lows, highs = {}, {}
  for wi = 1, #S.sizes do
    if mins[wi] then judge_window(K, wi, mins[wi], sym, tick, lows, highs, W, owns) end
  end
  if #owns == 0 then return end
  local t = tonumber(tick.exchange_time)
  for _, d in ipairs(owns) do
    if d.st == 'own' then
      d.ol, d.oh, d.dirty = lower(d.ol, tick.price), higher(d.oh, tick.price), true
      local w = W[d.wi]
      local slid = w.cur - 59 > d.fb
      if t >= d.nb then
        local low, high = d.ol, d.oh
        if slid then
          local lo, _, hi = window_range(w)
          low, high = lo, hi
        end
        local direction = reached(d, p, low, high)
        if direction then
          fire_move(K, d, sym, tick, direction, low, high, W, owns)
        elseif slid then
          d.dirty = nil
          move_to(K, d, 'pct')  -- measured from the window again, like any other
        end
      end
    end
  end
end

-- The recurring percent alerts of the symbol that measure from their last firing, with their definitions.
local function load_owns(K)
  local owns = {}
  for _, id in ipairs(redis.call('SMEMBERS', K.own)) do
    local d = load_def(id)
    if d then owns[#owns + 1] = d else redis.call('SREM', K.own, id) end
  end
  return owns
end

local function save_owns(owns)
  for _, d in ipairs(owns) do
    if d.dirty and d.st == 'own' then
      d.dirty = nil
      save_def(d)
    end
  end
end

-- The smallest percent per window and direction: mins[wi][set] (from the adv hash's "<wi><set>" fields).
local function load_mins(K)
  local mins, flat = {}, redis.call('HGETALL', K.adv)
  for j = 1, #flat, 2 do
    local wi, set = string.match(flat[j], '^(%d+)(%a+)$')
    wi = tonumber(wi)
    mins[wi] = mins[wi] or {}
    mins[wi][set] = tonumber(flat[j + 1])
  end
  S.adv_changed = false
  return mins
end
