-- Needs member.lua, defs.lua and fire.lua in front. The price levels and ranges: judging the A and B sets per tick
-- and the pending set (X) on the first trade (docs/conditions.md).

-- Where a price is relative to a range: 'below', 'in' or 'above' (a bound is inside).
local function range_side(price, d)
  if compare(price, d.lo) < 0 then return 'below' end
  if compare(price, d.hi) > 0 then return 'above' end
  return 'in'
end

-- Alert d reached its threshold in A or B at `tick`: fire it, spend the crossing, or move it on.
local function react(K, d, sym, tick)
  local c, st = d.c, d.st
  local state
  if c == 'above' or c == 'below' then
    if st == 'arm' then
      if fire_def(K, d, sym, tick) == 'gone' then return end
      state = 'rearm'
    else
      state = 'arm'
    end
  elseif c == 'cross' then
    if fire_def(K, d, sym, tick) == 'gone' then return end
    local order = compare(tick.price, d.t)
    state = order > 0 and 'down' or (order < 0 and 'up' or 'pend2')
  else
    state = range_side(tick.price, d)
    local fires = (c == 'enter_range' and st ~= 'in' and state == 'in')
      or (c == 'exit_range' and st == 'in' and state ~= 'in')
    if fires and fire_def(K, d, sym, tick) == 'gone' then return end
  end
  move_to(K, d, state)
end

-- The first trade after indexing (or after a recurring cross fired exactly at its target) fixes the side.
local function resolve_pending(K, d, sym, tick)
  if tick.stream_ms < d.at then return end
  if d.c ~= 'cross' then
    move_to(K, d, range_side(tick.price, d))
    return
  end
  local order = compare(tick.price, d.t)
  if order == 0 then
    if d.st == 'pend2' then return end
    if fire_def(K, d, sym, tick) == 'gone' then return end
    move_to(K, d, 'pend2')
    return
  end
  move_to(K, d, order < 0 and 'up' or 'down')
end

-- Judges every member of the pending set at `tick`: v1 cross members as v1 did, the others by their definition.
local function judge_pending(K, sym, tick)
  local members = redis.call('ZRANGE', K.X, 0, -1, 'WITHSCORES')
  for j = 1, #members, 2 do
    local member = members[j]
    if is_compact(member) then
      local a = parse(member)
      local order = compare(tick.price, a.target_price)
      if tick.stream_ms >= a.indexed_at then
        redis.call('ZREM', K.X, member)
        if order == 0 then
          bury(a.alert_id, S.now, S.ttl)
          if a.expires_at == '' or tonumber(tick.exchange_time) <= tonumber(a.expires_at) then
            fire_compact(a, sym, tick)
          end
        else
          redis.call('ZADD', order < 0 and K.A or K.B, members[j + 1], member)
          S.levels = true
        end
      end
    else
      local d = load_def(member)
      if d then resolve_pending(K, d, sym, tick) else redis.call('ZREM', K.X, member) end
    end
  end
end

-- Walks set `set` of K nearest threshold first (`walk`: a range query down to `bound`) and judges each member
-- exactly: fires or moves it on if the price reached it (`side` 1: at or above, -1: at or below), else parks it;
-- stops at a parked miss. Reached members too new to judge stay in front (the walk's offset).
local function judge(K, set, walk, bound, side, sym, tick)
  local key, mark = K[set], MARKS[set]
  local offset = 0
  repeat
    local members = redis.call(walk, key, bound, tick.price, 'LIMIT', offset, 8)
    for _, member in ipairs(members) do
      local plain = unparked(member)
      local a, d, threshold
      if is_compact(plain) then
        a = parse(member)
        threshold = a.target_price
      else
        d = load_def(plain)
        threshold = d and threshold_in(d, set)
      end
      if not threshold then
        redis.call('ZREM', key, member)  -- a definition gone from under its member: nothing to judge
      elseif compare(tick.price, threshold) * side >= 0 then
        if tick.stream_ms < (a and a.indexed_at or d.at) then
          offset = offset + 1
        elseif a then
          redis.call('ZREM', key, member)
          bury(a.alert_id, S.now, S.ttl)
          if a.expires_at == '' or tonumber(tick.exchange_time) <= tonumber(a.expires_at) then
            fire_compact(a, sym, tick)
          end
        else
          react(K, d, sym, tick)
        end
      elseif string.byte(member) == string.byte(mark) then
        return
      else
        park(key, member, mark, threshold)
      end
    end
  until #members < 8
end
