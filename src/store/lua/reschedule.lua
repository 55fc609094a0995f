-- KEYS: queue, event hash. ARGV: meta, consumer. Only while the event is pending and this
-- consumer's: a replica that lost it to an adopter must not rewrite the adopter's schedule.
local sid = redis.call('HGET', KEYS[2], 'sid')
if not sid then return 0 end
local p = redis.pcall('XPENDING', KEYS[1], 'hookgate', sid, sid, 1, ARGV[2])
if type(p) ~= 'table' or p.err or #p == 0 then return 0 end
redis.call('HSET', KEYS[2], 'meta', ARGV[1])
return 1
