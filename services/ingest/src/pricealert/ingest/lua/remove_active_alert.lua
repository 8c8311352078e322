-- An alert gone (subscriptions.py). KEYS: as add_active_alert.lua. ARGV: alert id, symbol, now (epoch ms), the
-- tombstone's expiry (epoch ms). Expired tombstones are trimmed here; the tombstone stands for the alert's order.
-- Returns 1 if the symbol left the symbols set, else 0.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[2]) end
return 0
