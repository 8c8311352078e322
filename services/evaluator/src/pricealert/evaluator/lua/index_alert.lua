-- Needs member.lua in front (index.py).
local prefix, id, target, rest, symbol = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', prefix .. 'done:' .. id) == 1 then return 0 end
for _, direction in ipairs({'cross:', 'above:', 'below:'}) do
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', prefix .. direction .. symbol, target, target)) do
    if string.sub(unparked(member), 1, #id + 1) == id .. '\t' then return 0 end
  end
end
local now = redis.call('TIME')
local indexed_at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', prefix .. ARGV[6] .. ':' .. symbol, target, id .. '\t' .. indexed_at .. '\t' .. rest)
return 1
