-- A right password (ratelimit.py): gives back its counted attempt, forgets the pair's failures and, if ARGV[3] is '1',
-- remembers the address. KEYS as count_login_attempt.lua. ARGV: client address, known-address lifetime ms,
-- remember (1/0), most addresses kept. Returns 0.
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
if ARGV[3] == '1' then
  local now = redis.call('TIME')
  local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local lifetime = tonumber(ARGV[2])
  redis.call('ZADD', KEYS[4], now_ms, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now_ms - lifetime))
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(tonumber(ARGV[4]) + 1))
  redis.call('PEXPIRE', KEYS[4], lifetime)
end
return 0
