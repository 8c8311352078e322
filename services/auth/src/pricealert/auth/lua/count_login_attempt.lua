-- Counts one login attempt before the password check, or refuses it (ratelimit.py). KEYS: the pair's, the address's
-- and the account's failure counters, the account's known addresses. ARGV: window s, the three limits (same order),
-- client address, known-address lifetime ms. The account counter is skipped for a known address. Returns 0
-- (counted, go on) or the seconds to wait.
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local seen = redis.call('ZSCORE', KEYS[4], ARGV[5])
local known = seen and tonumber(seen) >= now_ms - tonumber(ARGV[6])
local window = tonumber(ARGV[1])
local wait = 0
for i = 1, 3 do
  if i < 3 or not known then
    local count = tonumber(redis.call('GET', KEYS[i]) or '0')
    if count >= tonumber(ARGV[i + 1]) then
      local ttl = redis.call('TTL', KEYS[i])
      if ttl < 0 then redis.call('EXPIRE', KEYS[i], window); ttl = window end
      if ttl > wait then wait = ttl end
    end
  end
end
if wait > 0 then return math.max(wait, 1) end
for i = 1, 3 do
  redis.call('INCR', KEYS[i])
  if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], window) end
end
return 0
