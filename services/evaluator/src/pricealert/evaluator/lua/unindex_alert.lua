-- Needs member.lua in front (index.py).
local prefix, id, target, symbol, reason, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local removed = 0
for _, direction in ipairs({'cross:', 'above:', 'below:'}) do
  local key = prefix .. direction .. symbol
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', key, target, target)) do
    if string.sub(unparked(member), 1, #id + 1) == id .. '\t' then
      removed = removed + redis.call('ZREM', key, member)
    end
  end
end
redis.call('SET', prefix .. 'done:' .. id, reason, 'EX', ttl, 'NX')
return removed
