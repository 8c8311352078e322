-- An active alert (subscriptions.py). KEYS: the symbol's alert set, the shard's symbols set, the shard's
-- tombstones (sorted set: alert id -> expiry, epoch ms), the shard's alert orders (sorted set: alert id -> the order
-- of its latest change, kept only past its first definition). ARGV: alert id, symbol, now (epoch ms), this change's
-- order (2 x version), 1 to record the order. An alert tombstoned (score > now) stays gone, and a change older than
-- one already applied (a pause of this version, or a later version) is ignored. Returns 1 if the symbol joined the
-- symbols set, else 0.
local gone = redis.call('ZSCORE', KEYS[3], ARGV[1])
if gone and tonumber(gone) > tonumber(ARGV[3]) then return 0 end
local known = redis.call('ZSCORE', KEYS[4], ARGV[1])
if known and tonumber(known) > tonumber(ARGV[4]) then return 0 end
if ARGV[5] == '1' then redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1]) end
redis.call('SADD', KEYS[1], ARGV[1])
return redis.call('SADD', KEYS[2], ARGV[2])
