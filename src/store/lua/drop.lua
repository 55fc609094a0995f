-- KEYS: dead, dead count. ARGV: event key prefix, then `id, route` per dead letter.
local gone = {}
for i = 2, #ARGV, 2 do
  local h = ARGV[1] .. ARGV[i]
  local dsid = redis.call('HGET', h, 'dsid')
  if dsid and redis.call('XDEL', KEYS[1], dsid) == 1 then
    redis.call('DEL', h)
    if redis.call('HINCRBY', KEYS[2], ARGV[i + 1], -1) <= 0 then redis.call('HDEL', KEYS[2], ARGV[i + 1]) end
    gone[#gone + 1] = ARGV[i]
  end
end
return gone
