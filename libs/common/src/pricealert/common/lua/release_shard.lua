-- Gives a shard's lease up, only if it is still ours (ownership.py). KEYS[1] the owner key; ARGV[1] our token.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
