-- Counts one sign-up request in each counter of KEYS (signup_limits.py), giving a new counter its expiry.
-- ARGV: window s. Returns count, TTL for each key, in KEYS order.
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[1]) end
  out[2 * i - 1] = count
  out[2 * i] = redis.call('TTL', key)
end
return out
