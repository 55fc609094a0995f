-- KEYS: a stream (queue or dead). ARGV: event key prefix, start, count. One page: where the
-- next starts (empty after the last) and `{id, meta}` of each entry, oldest first.
local out = {}
local entries = redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', ARGV[3])
for _, e in ipairs(entries) do
  local id, f = false, e[2]
  for j = 1, #f, 2 do if f[j] == 'id' then id = f[j + 1] end end
  local meta = id and redis.call('HGET', ARGV[1] .. id, 'meta')
  if meta then out[#out + 1] = {id, meta} end
end
local nxt = ''
if #entries == tonumber(ARGV[3]) then nxt = '(' .. entries[#entries][1] end
return {nxt, out}
