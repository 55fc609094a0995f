-- KEYS: queue, dead, dead count, heartbeat. ARGV: consumer, event key prefix, lease ms, then
-- `id, route, meta` per dead letter. Moves each one still dead back into the queue, owned by
-- this consumer.
local q, g, me = KEYS[1], 'hookgate', ARGV[1]
if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('SET', KEYS[4], 'w', 'PX', ARGV[3]) end
if redis.call('EXISTS', q) == 0 then redis.call('XGROUP', 'CREATE', q, g, '0', 'MKSTREAM') end
local moved = {}
for i = 4, #ARGV, 3 do
  local h = ARGV[2] .. ARGV[i]
  local dsid = redis.call('HGET', h, 'dsid')
  if dsid and redis.call('XDEL', KEYS[2], dsid) == 1 then
    local sid = redis.call('XADD', q, '*', 'id', ARGV[i])
    redis.call('XREADGROUP', 'GROUP', g, me, 'STREAMS', q, '>')
    redis.call('HSET', h, 'meta', ARGV[i + 2], 'sid', sid)
    redis.call('HDEL', h, 'dsid')
    if redis.call('HINCRBY', KEYS[3], ARGV[i + 1], -1) <= 0 then redis.call('HDEL', KEYS[3], ARGV[i + 1]) end
    moved[#moved + 1] = ARGV[i]
  end
end
return moved
