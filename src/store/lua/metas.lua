-- KEYS: queue (only to say which node of a Cluster runs it). ARGV: event key prefix, ids.
-- `{id, meta}` of those still pending.
local out = {}
for i = 2, #ARGV do
  local v = redis.call('HMGET', ARGV[1] .. ARGV[i], 'meta', 'sid')
  if v[1] and v[2] then out[#out + 1] = {ARGV[i], v[1]} end
end
return out
