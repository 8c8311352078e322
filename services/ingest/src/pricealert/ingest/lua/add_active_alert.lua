-- An active alert (subscriptions.py). KEYS: the symbol's alert set, the symbols set, the alert's tombstone.
-- ARGV: alert id, symbol. An alert already gone stays gone. Returns 1 if the symbol joined the symbols set, else 0.
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
return redis.call('SADD', KEYS[2], ARGV[2])
