-- KEYS[1] the channel registry hash; ARGV: channel id, version, spec JSON. Writes the spec unless the registry
-- holds a newer version of the channel (a late writer never undoes a newer change). Returns 1 if written.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, spec = pcall(cjson.decode, current)
  if ok and type(spec) == 'table' and tonumber(spec.version) and tonumber(spec.version) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
