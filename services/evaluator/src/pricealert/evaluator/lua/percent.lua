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

-- The symbol's windows: W[wi] = {cur = bucket, lo, hi (of the current bucket), plo, phi (of the 59 before)}.
local function load_windows(key)
  local W = {latest = 0}
  local summary = redis.call('HGET', key, 's')
  local parts = {}
  if summary then
    for part in string.gmatch(summary, '%S+') do parts[#parts + 1] = part end
    W.latest = tonumber(parts[1])
  end
  for wi = 1, #S.sizes do
    local o = 2 + (wi - 1) * 5
    if summary then
      W[wi] = {cur = tonumber(parts[o]), lo = decimal_or_nil(parts[o + 1]), hi = decimal_or_nil(parts[o + 2]),
               plo = decimal_or_nil(parts[o + 3]), phi = decimal_or_nil(parts[o + 4])}
    else
      W[wi] = {cur = -1}
    end
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
  -- Kept a day past the last percent alert's going (evaluate_ticks.lua updates it while the hash exists).
  redis.call('PEXPIRE', key, 2 * 86400000)
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
  w.plo, w.phi = nil, nil
  if #fields > 0 then
    for _, value in ipairs(redis.call('HMGET', key, unpack(fields))) do
      if value then
        local lo, hi = string.match(value, '^(%S+) (%S+)$')
        w.plo, w.phi = lower(w.plo, lo), higher(w.phi, hi)
      end
    end
  end
  w.cur, w.lo, w.hi = b, nil, nil
end

-- Adds a trade to every window; returns the windows' lows and highs at it (this trade included).
local function add_trade(key, W, price, exchange_time)
  local t = math.max(tonumber(exchange_time), W.latest)
  W.latest = t
  local lows, highs = {}, {}
  for wi = 1, #S.sizes do
    local w = W[wi]
    local b = math.floor(t / S.sizes[wi])
    if b ~= w.cur then advance(key, wi, w, b) end
    w.lo, w.hi = lower(w.lo, price), higher(w.hi, price)
    lows[wi], highs[wi] = lower(w.plo, w.lo), higher(w.phi, w.hi)
  end
  return lows, highs
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

-- One trade against the symbol's percent alerts: the shared sets (per window, only when the smallest percent is
-- reached), then the recurring ones measuring from their last firing.
local function judge_percent(K, sym, tick, W, mins, owns, lows, highs)
  local p = tonumber(tick.price)
  for wi = 1, #S.sizes do
    local up, down, either = mins[wi .. 'up'], mins[wi .. 'down'], mins[wi .. 'move']
    if up or down or either then
      local rise = p * 100 / tonumber(lows[wi]) - 100
      local fall = 100 - p * 100 / tonumber(highs[wi])
      if up and rise + 1e-9 >= tonumber(up) then walk_percent(K, 'up', wi, rise, sym, tick, lows, highs, W, owns) end
      if down and fall + 1e-9 >= tonumber(down) then
        walk_percent(K, 'down', wi, fall, sym, tick, lows, highs, W, owns)
      end
      local most = math.max(rise, fall)
      if either and most + 1e-9 >= tonumber(either) then
        walk_percent(K, 'move', wi, most, sym, tick, lows, highs, W, owns)
      end
    end
  end
  local t = tonumber(tick.exchange_time)
  for _, d in ipairs(owns) do
    if d.st == 'own' then
      d.ol, d.oh, d.dirty = lower(d.ol, tick.price), higher(d.oh, tick.price), true
      local slid = W[d.wi].cur - 59 > d.fb
      if t >= d.nb then
        local low, high = d.ol, d.oh
        if slid then low, high = lows[d.wi], highs[d.wi] end
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

-- The smallest percent per window and direction ("<wi><set>" -> percent).
local function load_mins(K)
  local mins, flat = {}, redis.call('HGETALL', K.adv)
  for j = 1, #flat, 2 do mins[flat[j]] = flat[j + 1] end
  S.adv_changed = false
  return mins
end
