-- Needs member.lua in front. Alerts indexed with their whole definition and state (index.py's definition): one JSON
-- field each in the shard's defs hash; the alert id is its member in the sets its state places it in
-- (docs/conditions.md). K is one symbol's keys: X (pending: the first trade decides), A (fires at or above the
-- threshold), B (at or below), adv (smallest percent per window and direction), up, down, move (percent sets), own.
-- S is the calling script's context: S.defs, S.done and, while evaluating, the batch's flags.
local S = {}
local PCT_SET = {pct_up = 'up', pct_down = 'down', pct_move = 'move'}
local PCT_SPAN = 10000  -- a percent member's score: window index * PCT_SPAN + percent (percent <= 1000)
local MARKS = {A = '~', B = '!'}  -- the parked marks of evaluate_ticks.lua's walk

local function load_def(id)
  local json = redis.call('HGET', S.defs, id)
  if not json then return nil end
  return cjson.decode(json)
end

local function save_def(d)
  redis.call('HSET', S.defs, d.id, cjson.encode(d))
end

local function now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

-- The state a new (or edited) definition starts in.
local function initial_state(d)
  if PCT_SET[d.c] then return 'pct' end
  if d.c == 'above' or d.c == 'below' then return 'arm' end
  return 'pend'  -- cross and the ranges: the first trade fixes the side
end

-- Where the alert waits in its state: a list of {set, threshold} (a decimal string; a score for percent sets).
local function positions(d)
  local c, st = d.c, d.st
  if st == 'paused' or st == 'own' then return {} end
  if PCT_SET[c] then return {{PCT_SET[c], d.wi * PCT_SPAN + tonumber(d.p)}} end
  if c == 'above' then return st == 'arm' and {{'A', d.t}} or {{'B', d.tm}} end
  if c == 'below' then return st == 'arm' and {{'B', d.t}} or {{'A', d.tp}} end
  if c == 'cross' then
    if st == 'up' then return {{'A', d.t}} elseif st == 'down' then return {{'B', d.t}} end
    return {{'X', d.t}}
  end
  if st == 'below' then return {{'A', d.lo}} elseif st == 'above' then return {{'B', d.hi}} end
  if st == 'in' then return {{'B', d.lm}, {'A', d.hp}} end
  return {{'X', d.lo}}
end

-- The threshold the alert waits on in set `set` (A or B).
local function threshold_in(d, set)
  for _, pos in ipairs(positions(d)) do
    if pos[1] == set then return pos[2] end
  end
  return nil
end

-- A member of A or B as evaluate_ticks.lua parks it.
local function parked_form(mark, threshold, id)
  return mark .. string.char(64 + #string.match(threshold, '^%d*')) .. threshold .. '\t' .. id
end

local function pct_field(d)
  return d.wi .. PCT_SET[d.c]
end

local function pct_added(K, d)
  local field = pct_field(d)
  local smallest = redis.call('HGET', K.adv, field)
  if not smallest or tonumber(d.p) < tonumber(smallest) then
    redis.call('HSET', K.adv, field, d.p)
    S.adv_changed = true
  end
end

local function pct_removed(K, d)
  local field = pct_field(d)
  local smallest = redis.call('HGET', K.adv, field)
  if smallest and tonumber(smallest) < tonumber(d.p) then return end
  local base = d.wi * PCT_SPAN
  local first = redis.call('ZRANGEBYSCORE', K[PCT_SET[d.c]], base, base + PCT_SPAN - 1, 'LIMIT', 0, 1)
  local other = first[1] and load_def(first[1])
  if other then redis.call('HSET', K.adv, field, other.p) else redis.call('HDEL', K.adv, field) end
  S.adv_changed = true
end

-- Puts the alert where its state waits; tells the evaluation which sets now need judging.
local function place(K, d)
  for _, pos in ipairs(positions(d)) do
    redis.call('ZADD', K[pos[1]], tonumber(pos[2]), d.id)
    if PCT_SET[d.c] then pct_added(K, d) end
    if pos[1] == 'X' then S.pending = true elseif MARKS[pos[1]] then S.levels = true end
  end
  if d.st == 'own' then redis.call('SADD', K.own, d.id) end
end

-- Takes the alert out of every set its state put it in (parked or not).
local function unplace(K, d)
  for _, pos in ipairs(positions(d)) do
    local set = pos[1]
    if MARKS[set] then
      redis.call('ZREM', K[set], d.id, parked_form(MARKS[set], pos[2], d.id))
    else
      redis.call('ZREM', K[set], d.id)
    end
    if PCT_SET[d.c] then pct_removed(K, d) end
  end
  if d.st == 'own' then redis.call('SREM', K.own, d.id) end
end

-- A tombstone for an alert that left the index for good; expired ones are trimmed first (once per script call).
local function bury(alert_id, now, ttl)
  if not S.trimmed then
    redis.call('ZREMRANGEBYSCORE', S.done, '-inf', now)
    S.trimmed = true
  end
  redis.call('ZADD', S.done, 'NX', string.format('%.0f', tonumber(now) + ttl * 1000), alert_id)
end

-- A symbol's keys from KEYS, starting at `first`, in index.py's symbol_keys order.
local function symbol_keys(first)
  return {X = KEYS[first], A = KEYS[first + 1], B = KEYS[first + 2], adv = KEYS[first + 3], up = KEYS[first + 4],
          down = KEYS[first + 5], move = KEYS[first + 6], own = KEYS[first + 7]}
end
