-- Needs member.lua in front (index.py). Takes an alert out of its symbol's index for good, leaving a tombstone.
-- KEYS: the symbol's cross, above and below sets, the shard's tombstones (one slot: the shard's hash tag).
-- ARGV: alert id, target price, tombstone lifetime (s). Expired tombstones are trimmed here, where they are added.
local id, target, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local removed = 0
for k = 1, 3 do
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[k], target, target)) do
    if string.sub(unparked(member), 1, #id + 1) == id .. '\t' then
      removed = removed + redis.call('ZREM', KEYS[k], member)
    end
  end
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now_ms)
redis.call('ZADD', KEYS[4], 'NX', string.format('%.0f', now_ms + ttl * 1000), id)
return removed
