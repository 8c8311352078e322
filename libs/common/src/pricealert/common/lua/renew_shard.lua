-- Keeps this replica's lease on a shard (ownership.py): renewed if it is ours, taken again if it lapsed unclaimed.
-- KEYS[1] the shard's owner key; ARGV[1] our token, ARGV[2] the lease in ms. 1: ours, 0: another replica's.
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] or not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
