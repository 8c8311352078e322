-- Appends a batch of ticks to KEYS[1] (tickwriter.py). ARGV: MAXLEN, separator, the five names of
-- events.Tick.FIELDS, then one row per tick: its values in that order, joined by the separator.
local key, maxlen, sep = KEYS[1], ARGV[1], ARGV[2]
local f1, f2, f3, f4, f5 = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local find, sub = string.find, string.sub
for i = 8, #ARGV do
  local row = ARGV[i]
  local a = find(row, sep, 1, true)
  local b = find(row, sep, a + 1, true)
  local c = find(row, sep, b + 1, true)
  local d = find(row, sep, c + 1, true)
  redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*',
    f1, sub(row, 1, a - 1), f2, sub(row, a + 1, b - 1), f3, sub(row, b + 1, c - 1),
    f4, sub(row, c + 1, d - 1), f5, sub(row, d + 1))
end
return #ARGV - 7
