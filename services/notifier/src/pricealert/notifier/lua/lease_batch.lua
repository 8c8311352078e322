-- The send rule for a batch of triggers (lease.py). KEYS[1]: the set of unverified accounts, then per trigger its
-- sent, lease and retry keys. ARGV: lease ms, then per trigger its token, then its queued flag (1: taken from the
-- retry queue), then its user id. Returns per trigger: 1 if sent already, 4 if its user's address is not verified,
-- 2 if a stream copy of a trigger that waits in the retry queue (that copy stands for it), else takes the lease: 0 if
-- taken, 3 if someone holds it.
local n = (#KEYS - 1) / 3
local out = {}
for i = 1, n do
  local sent, lease, retry = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  if redis.call('EXISTS', sent) == 1 then
    out[i] = 1
  elseif redis.call('SISMEMBER', KEYS[1], ARGV[1 + 2 * n + i]) == 1 then
    out[i] = 4
  elseif ARGV[1 + n + i] == '0' and redis.call('EXISTS', retry) == 1 then
    out[i] = 2
  elseif redis.call('SET', lease, ARGV[1 + i], 'NX', 'PX', ARGV[1]) then
    out[i] = 0
  else
    out[i] = 3
  end
end
return out
