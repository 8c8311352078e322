-- A notice at most once per key and window (handlers.py): mark KEYS[1] for ARGV[1] seconds and append the event
-- (field, value pairs from ARGV[3] on, as AccountEvent.to_fields writes them) to KEYS[2] trimmed to ~ARGV[2], or
-- do neither.
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
  return 1
end
return 0
