-- KEYS: queue, event hash. ARGV: consumer. The event, if it is pending and this consumer's.
local v = redis.call('HMGET', KEYS[2], 'event', 'sid')
if not v[1] or not v[2] then return false end
local p = redis.pcall('XPENDING', KEYS[1], 'hookgate', v[2], v[2], 1, ARGV[1])
if type(p) ~= 'table' or p.err or #p == 0 then return false end
return v[1]
