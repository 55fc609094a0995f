-- KEYS: queue. ARGV: consumer, min idle ms, start, count, event key prefix. A slice of this
-- consumer's PEL: the next start (`-` once the end was reached), the event ids of entries
-- idle longer than the lease, and how many entries it looked at. Entries whose event is gone
-- are removed.
local q = KEYS[1]
if redis.call('EXISTS', q) == 0 then return {'-', {}, 0} end
local p = redis.pcall('XPENDING', q, 'hookgate', 'IDLE', ARGV[2], ARGV[3], '+', ARGV[4], ARGV[1])
if type(p) ~= 'table' or p.err then return {'-', {}, 0} end
local ids = {}
for _, e in ipairs(p) do
  local r = redis.call('XRANGE', q, e[1], e[1])[1]
  local id, f = false, r and r[2]
  if f then
    for j = 1, #f, 2 do if f[j] == 'id' then id = f[j + 1] end end
  end
  if id and redis.call('EXISTS', ARGV[5] .. id) == 1 then
    ids[#ids + 1] = id
  else
    redis.call('XACK', q, 'hookgate', e[1])
    redis.call('XDEL', q, e[1])
  end
end
local nxt = '-'
if #p == tonumber(ARGV[4]) then nxt = '(' .. p[#p][1] end
return {nxt, ids, #p}
