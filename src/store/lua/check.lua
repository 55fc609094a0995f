-- KEYS: queue. ARGV: consumer, event key prefix, ids. The ids this consumer does not own
-- (taken over, delivered, dead or gone).
local q, me, lost = KEYS[1], ARGV[1], {}
for i = 3, #ARGV do
  local sid = redis.call('HGET', ARGV[2] .. ARGV[i], 'sid')
  local mine = false
  if sid then
    local p = redis.pcall('XPENDING', q, 'hookgate', sid, sid, 1, me)
    mine = type(p) == 'table' and p.err == nil and #p > 0
  end
  if not mine then lost[#lost + 1] = ARGV[i] end
end
return lost
