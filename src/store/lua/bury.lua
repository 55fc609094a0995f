-- KEYS: queue, event hash, dead, dead count. ARGV: meta, id, route, consumer. Only this
-- consumer's events: an adopter may be delivering it.
local sid = redis.call('HGET', KEYS[2], 'sid')
if not sid then return 0 end
local p = redis.pcall('XPENDING', KEYS[1], 'hookgate', sid, sid, 1, ARGV[4])
if type(p) ~= 'table' or p.err or #p == 0 then return 0 end
redis.pcall('XACK', KEYS[1], 'hookgate', sid)
redis.call('XDEL', KEYS[1], sid)
local dsid = redis.call('XADD', KEYS[3], '*', 'id', ARGV[2])
redis.call('HSET', KEYS[2], 'meta', ARGV[1], 'dsid', dsid)
redis.call('HDEL', KEYS[2], 'sid')
redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
return 1
