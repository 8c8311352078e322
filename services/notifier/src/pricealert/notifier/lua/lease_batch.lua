-- The send rule for a batch of deliveries of one shard (lease.py). KEYS: per delivery its sent, lease and retry keys
-- (all of one shard). ARGV: lease ms, then per delivery its token, then its queued flag (1: taken from the retry
-- queue). Returns per delivery: 1 if sent already, 2 if a stream copy of a delivery that waits in the retry queue (that
-- copy stands for it), else takes the lease: 0 if taken, 3 if someone holds it. (Whether its user may get mail is
-- asked beside this call: that set lives in another slot.)
local n = #KEYS / 3
local out = {}
for i = 1, n do
  local sent, lease, retry = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  if redis.call('EXISTS', sent) == 1 then
    out[i] = 1
  elseif ARGV[1 + n + i] == '0' and redis.call('EXISTS', retry) == 1 then
    out[i] = 2
  elseif redis.call('SET', lease, ARGV[1 + i], 'NX', 'PX', ARGV[1]) then
    out[i] = 0
  else
    out[i] = 3
  end
end
return out
