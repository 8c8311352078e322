-- Needs member.lua and defs.lua in front (index.py). Indexes an alert with its whole definition: a new one that is
-- not v1-shaped, or a new version of any (alert.updated), unless it left the index for good or a newer version is in.
-- KEYS: the symbol's keys (defs.lua's symbol_keys, 8), the shard's defs hash and tombstones, the symbol's window
-- hash. ARGV: alert id, definition (JSON, without its state), version, paused ('1'/'0'), the previous version's
-- target (a v1-shaped member to replace, or ''), the number of windows.
local K = symbol_keys(1)
S.defs, S.done = KEYS[9], KEYS[10]
local id, definition, version, paused, previous = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1', ARGV[5]
local now = now_ms()
local tombstone = redis.call('ZSCORE', S.done, id)
if tombstone and tonumber(tombstone) > now then return 0 end
local d = cjson.decode(definition)
d.k, d.hs, d.hc = 0, 0, 0
local old = load_def(id)
if old then
  if tonumber(old.v) >= version then return 0 end
  unplace(K, old)
  d.k, d.hs, d.hc = old.k, old.hs, old.hc
  if old.st == 'paused' and not paused then d.hs, d.hc = 0, 0 end  -- a resumed alert starts a new hour
elseif previous ~= '' then
  for _, key in ipairs({K.X, K.A, K.B}) do
    for _, member in ipairs(redis.call('ZRANGEBYSCORE', key, previous, previous)) do
      if string.sub(unparked(member), 1, #id + 1) == id .. '\t' then redis.call('ZREM', key, member) end
    end
  end
end
d.id, d.v, d.at, d.nb = id, version, now, 0
d.st = paused and 'paused' or initial_state(d)
if PCT_SET[d.c] and redis.call('EXISTS', KEYS[11]) == 0 then
  -- The symbol's windows are kept from its first percent alert on (evaluate_ticks.lua keeps them while this exists).
  redis.call('HSET', KEYS[11], 's', '0' .. string.rep(' -1 - - - -', tonumber(ARGV[6])))
  redis.call('PEXPIRE', KEYS[11], 2 * 86400000)
end
place(K, d)
save_def(d)
return 1
