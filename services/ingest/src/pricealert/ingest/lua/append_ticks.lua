-- Appends a batch of one shard's ticks (tickwriter.py), fenced by the shard's lease and deduplicated by trade id.
-- KEYS: the shard's owner key, its ticks stream, its last-trade hash (symbol -> last trade id written).
-- ARGV: our lease token, the separator, a head (the marks' lifetime in ms, MAXLEN, the five names of
-- events.Tick.FIELDS and the lease in ms, joined by the separator: one argument, as each call of a batch repeats
-- it), then one row per tick: its values in that order, joined by the separator. A trade whose id is not above the
-- last written for its symbol is skipped (a new owner may receive what the old one wrote). The marks expire when the
-- shard writes nothing for their lifetime: a handover takes seconds, and an exchange whose ids restart (the fake
-- one) is not ignored for long. A lease that lapsed unclaimed (its renewals failed while Redis was unreachable) is
-- taken again, as renew_shard.lua would: no other replica holds the shard, so giving it up would only delay it.
-- Returns -1, writing nothing, when the lease is another replica's; else how many ticks were appended.
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return -1 end
local key, last_key, sep = KEYS[2], KEYS[3], ARGV[2]
local find, sub = string.find, string.sub
local head, at = {}, 1
while true do
  local stop = find(ARGV[3], sep, at, true)
  if not stop then
    head[#head + 1] = sub(ARGV[3], at)
    break
  end
  head[#head + 1] = sub(ARGV[3], at, stop - 1)
  at = stop + 1
end
local ttl, maxlen, f1, f2, f3, f4, f5 = head[1], head[2], head[3], head[4], head[5], head[6], head[7]
if not owner then redis.call('SET', KEYS[1], ARGV[1], 'PX', head[8]) end
local last, last_text, moved = {}, {}, {}
local appended = 0
for i = 4, #ARGV do
  local row = ARGV[i]
  local a = find(row, sep, 1, true)
  local b = find(row, sep, a + 1, true)
  local c = find(row, sep, b + 1, true)
  local d = find(row, sep, c + 1, true)
  local symbol, id_text = sub(row, 1, a - 1), sub(row, b + 1, c - 1)
  local id, previous = tonumber(id_text), last[symbol]
  if previous == nil then
    previous = tonumber(redis.call('HGET', last_key, symbol)) or -1
  end
  if id > previous then
    redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*',
      f1, symbol, f2, sub(row, a + 1, b - 1), f3, id_text, f4, sub(row, c + 1, d - 1), f5, sub(row, d + 1))
    last[symbol], last_text[symbol], moved[symbol] = id, id_text, true
    appended = appended + 1
  else
    last[symbol] = previous
  end
end
local marks = {}
for symbol in pairs(moved) do
  marks[#marks + 1] = symbol
  marks[#marks + 1] = last_text[symbol]
end
if #marks > 0 then
  redis.call('HSET', last_key, unpack(marks))
  redis.call('PEXPIRE', last_key, ttl)
end
return appended
