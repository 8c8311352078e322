-- A paused alert (subscriptions.py): it no longer counts, but no tombstone, so a later version can resume it. KEYS:
-- as add_active_alert.lua. ARGV: alert id, symbol, now (epoch ms), this change's order (2 x version + 1). A
-- tombstoned alert or a change older than one already applied is ignored. Returns 1 if the symbol left the symbols
-- set, else 0.
local gone = redis.call('ZSCORE', KEYS[3], ARGV[1])
if gone and tonumber(gone) > tonumber(ARGV[3]) then return 0 end
local known = redis.call('ZSCORE', KEYS[4], ARGV[1])
if known and tonumber(known) > tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[2]) end
return 0
