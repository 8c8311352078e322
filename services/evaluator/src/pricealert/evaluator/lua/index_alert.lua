-- Needs member.lua in front (index.py). Adds a v1-shaped alert to its symbol's index unless it left it already or a
-- later version of it is indexed with its definition (index_def.lua).
-- KEYS: the symbol's keys (defs.lua's symbol_keys, 8: this uses the first three), the shard's defs and tombstones,
-- the symbol's window hash (unused here).
-- ARGV: alert id, target price, the member's fields after id and indexed_at, condition (cross, above, below).
local id, target, rest, condition = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local tombstone = redis.call('ZSCORE', KEYS[10], id)
if tombstone and tonumber(tombstone) > now_ms then return 0 end
if redis.call('HEXISTS', KEYS[9], id) == 1 then return 0 end
for k = 1, 3 do
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[k], target, target)) do
    if string.sub(unparked(member), 1, #id + 1) == id .. '\t' then return 0 end
  end
end
local key = ({cross = KEYS[1], above = KEYS[2], below = KEYS[3]})[condition]
redis.call('ZADD', key, target, id .. '\t' .. now_ms .. '\t' .. rest)
return 1
