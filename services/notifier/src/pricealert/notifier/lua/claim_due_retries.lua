-- Takes the due ids of one shard's retry queue (retry.py). KEYS[1]: the queue (sorted set of due times). ARGV: now
-- ms, the due time to push the taken ids to (now + claim time), most ids. Returns the due time of the earliest id
-- still waiting when none is due ('' if the queue is empty; '' too when some are taken), then the ids taken.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
local next_due = ''
if #due == 0 then
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #head > 0 then next_due = head[2] end
end
table.insert(due, 1, next_due)
return due
