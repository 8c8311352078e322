-- Extends our lease, or takes it again if it lapsed and nobody else took it (lease.py). KEYS: the trigger's lease
-- and sent keys (both of its shard). ARGV: token, lease ms. Returns 1 if ours, 0 if someone else holds it, -1 once
-- the mail is sent. Ours is extended with PEXPIRE, which a Redis at maxmemory (noeviction) still runs: SET it refuses.
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
