-- KEYS: queue, event hash. Delivered: the entry and the event go.
local sid = redis.call('HGET', KEYS[2], 'sid')
if not sid then return 0 end
redis.pcall('XACK', KEYS[1], 'hookgate', sid)
redis.call('XDEL', KEYS[1], sid)
redis.call('DEL', KEYS[2])
return 1
