-- Takes the due ids of the retry queue (retry.py). KEYS[1]: the queue (sorted set of due times). ARGV: now ms,
-- the due time to push the taken ids to (now + claim time), most ids. Returns the ids taken.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return due
