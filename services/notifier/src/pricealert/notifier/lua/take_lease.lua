-- The send rule for one mail (lease.py; lease_batch.lua without the retry and verification checks). KEYS: sent,
-- lease. ARGV: token, lease ms. Returns 1 if sent already, else takes the lease: 0 if taken, 3 if someone holds it.
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
return 3
