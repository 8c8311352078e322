-- Needs member.lua, defs.lua, fire.lua, levels.lua and percent.lua in front (matcher.py). Judges one shard's batch
-- of ticks: fires every alert a trade reaches (docs/conditions.md), appends its trigger, moves recurring ones on.
-- Every key is in KEYS and carries the shard's hash tag. KEYS: the shard's owner key, ticks stream, triggers
-- stream, tombstones and defs hash, then per summary line (symbol) its 8 keys (defs.lua's symbol_keys) and its
-- window hash. ARGV: owner token, now (ms), triggers MAXLEN, tombstone lifetime (s), summary, tick lines, group,
-- entry ids, firings per hour, the windows' bucket lengths (ms), the calling consumer ('' for none).
-- Fenced: if the lease is not the caller's the script writes nothing and returns 0 (a list otherwise). It writes
-- nothing either and returns -1 if another consumer of the group holds pending ticks (a former owner's read that
-- landed after the takeover): the caller takes those over and judges them first (trades in order).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ticks_stream = KEYS[2]
if ARGV[11] ~= '' then
  local pending = redis.call('XPENDING', ticks_stream, ARGV[7])
  for _, holder in ipairs(pending[4] or {}) do
    if holder[1] ~= ARGV[11] and tonumber(holder[2]) > 0 then return -1 end
  end
end
S.triggers, S.done, S.defs = KEYS[3], KEYS[4], KEYS[5]
S.now, S.maxlen, S.ttl, S.limit = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[9])
S.fired, S.sizes = {}, {}
local summary, ticks_blob, group, ids_blob = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
for size in string.gmatch(ARGV[10], '%d+') do S.sizes[#S.sizes + 1] = tonumber(size) end

-- `found`: how many of K.X, K.adv, K.own and the window hash exist; `high`, `low`, `latest`: the batch's extremes
-- of price and trade time for the symbol.
local function evaluate_symbol(sym, chunk, K, window_key, found, high, low, latest)
  S.pending = found > 0 and redis.call('EXISTS', K.X) == 1
  S.levels = S.levels or S.pending
  local W, mins, owns
  if found > (S.pending and 1 or 0) then
    W, mins, owns = load_windows(window_key), load_mins(K), load_owns(K)
    W.watched = next(mins) ~= nil or #owns > 0
    -- Fast path: no percent alert can fire: the windows take the trades in one step (all in each window's current
    -- bucket) or a second of trade time at a time.
    if #owns == 0 and not may_fire_percent(W, mins, high, low) then
      if not add_batch(W, high, low, latest) then add_by_second(window_key, W, chunk) end
      save_windows(window_key, W)
      W = nil
      if not S.levels then return end
    end
  end
  -- tick lines (matcher.py): a tick's fields after its symbol, in events.Tick.FIELDS order, then its entry id
  for price, trade_id, etime, received, stream_ms in
      string.gmatch(chunk, '(%S+) (%S+) (%S+) (%S+) (%d+)%-%d+\n') do
    local tick = {price = price, trade_id = trade_id, exchange_time = etime,
                  received_at = received, stream_ms = tonumber(stream_ms)}
    if S.pending then
      judge_pending(K, sym, tick)
      S.pending = redis.call('EXISTS', K.X) == 1
    end
    if S.levels then
      judge(K, 'A', 'ZRANGEBYSCORE', '-inf', 1, sym, tick)
      judge(K, 'B', 'ZREVRANGEBYSCORE', '+inf', -1, sym, tick)
    end
    if W then
      if S.adv_changed then mins = load_mins(K) end
      add_trade(window_key, W, price, tonumber(price), etime)
      judge_percent(K, sym, tick, W, mins, owns)
    end
  end
  if W then
    save_windows(window_key, W)
    save_owns(owns)
  end
end

-- summary lines "SYMBOL HIGH LOW START LENGTH LATEST": each symbol's extreme prices, where its ticks lie and its
-- newest trade time; the n-th line's keys (n from 0) are KEYS[9n + 6 .. 9n + 14]
local n = 0
for sym, high, low, start, length, latest in string.gmatch(summary, '(%S+) (%S+) (%S+) (%d+) (%d+) (%d+)\n') do
  local K = symbol_keys(9 * n + 6)
  local window_key = KEYS[9 * n + 14]
  n = n + 1
  -- Fast path: nothing can happen unless the batch's extremes reach the nearest thresholds, or the symbol has
  -- alerts waiting for a first trade, percent alerts or a window to keep.
  local nearest_above = redis.call('ZRANGE', K.A, 0, 0, 'WITHSCORES')
  local nearest_below = redis.call('ZRANGE', K.B, -1, -1, 'WITHSCORES')
  S.levels = (#nearest_above > 0 and tonumber(nearest_above[2]) <= tonumber(high))
    or (#nearest_below > 0 and tonumber(nearest_below[2]) >= tonumber(low))
  local found = redis.call('EXISTS', K.X, K.adv, K.own, window_key)
  if S.levels or found > 0 then
    evaluate_symbol(sym, string.sub(ticks_blob, tonumber(start), tonumber(start) + tonumber(length) - 1), K,
      window_key, found, high, low, tonumber(latest))
  end
end
-- Acknowledged in the same script as the triggers they caused: both happen, or neither.
local ids = {}
for id in string.gmatch(ids_blob, '%S+') do ids[#ids + 1] = id end
if #ids > 0 then redis.call('XACK', ticks_stream, group, unpack(ids)) end
return S.fired
