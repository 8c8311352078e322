-- Drops our lease after a failed send unless someone else took it meanwhile (lease.py). KEYS[1]: lease.
-- ARGV[1]: token. Returns 1 if dropped, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
