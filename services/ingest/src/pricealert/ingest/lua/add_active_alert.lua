-- An active alert (subscriptions.py). KEYS: the symbol's alert set, the shard's symbols set, the shard's
-- tombstones (sorted set: alert id -> expiry, epoch ms). ARGV: alert id, symbol, now (epoch ms).
-- An alert tombstoned (score > now) stays gone. Returns 1 if the symbol joined the symbols set, else 0.
local gone = redis.call('ZSCORE', KEYS[3], ARGV[1])
if gone and tonumber(gone) > tonumber(ARGV[3]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
return redis.call('SADD', KEYS[2], ARGV[2])
