-- An alert gone (subscriptions.py). KEYS: the symbol's alert set, the symbols set, the alert's tombstone.
-- ARGV: alert id, symbol, tombstone TTL s. Returns 1 if the symbol left the symbols set, else 0.
redis.call('SET', KEYS[3], '1', 'EX', ARGV[3])
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[2]) end
return 0
