-- KEYS: queue, event hash, [dedup key]. An accepted event too few replicas confirmed: the
-- entry, the event and the dedup mark go, so the sender's retry is taken afresh.
local sid = redis.call('HGET', KEYS[2], 'sid')
if sid then
  redis.pcall('XACK', KEYS[1], 'hookgate', sid)
  redis.call('XDEL', KEYS[1], sid)
end
redis.call('DEL', KEYS[2])
if KEYS[3] and redis.call('GET', KEYS[3]) == 'delivered' then redis.call('DEL', KEYS[3]) end
return 1
