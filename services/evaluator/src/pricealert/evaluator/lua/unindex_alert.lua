-- Needs member.lua and defs.lua in front (index.py). Takes an alert out of its symbol's index for good, leaving a
-- tombstone. KEYS: the symbol's keys (defs.lua's symbol_keys, 8), the shard's defs hash and tombstones, the
-- symbol's window hash (unused here).
-- ARGV: alert id, target price ('' if none), tombstone lifetime (s). Expired tombstones are trimmed here, where
-- they are added.
local K = symbol_keys(1)
S.defs, S.done = KEYS[9], KEYS[10]
local id, target, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local removed = 0
local d = load_def(id)
if d then
  unplace(K, d)
  redis.call('HDEL', S.defs, id)
  removed = 1
elseif target ~= '' then
  for _, key in ipairs({K.X, K.A, K.B}) do
    for _, member in ipairs(redis.call('ZRANGEBYSCORE', key, target, target)) do
      if string.sub(unparked(member), 1, #id + 1) == id .. '\t' then
        removed = removed + redis.call('ZREM', key, member)
      end
    end
  end
end
bury(id, now_ms(), ttl)
return removed
