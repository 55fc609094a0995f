-- KEYS: queue. ARGV: consumer, heartbeat key prefix, event key prefix, budget. Claims the
-- entries of consumers whose heartbeat expired (at most `budget`) and returns the budget left
-- and `{id, meta}` of each; entries whose event is gone are removed. Dead consumers that own
-- nothing are removed from the group (a restarted replica is a new consumer).
local q, g, me = KEYS[1], 'hookgate', ARGV[1]
local out, budget = {}, tonumber(ARGV[4])
if redis.call('EXISTS', q) == 0 then return {budget, out} end
local consumers = redis.pcall('XINFO', 'CONSUMERS', q, g)
if type(consumers) ~= 'table' or consumers.err then return {budget, out} end
for _, c in ipairs(consumers) do
  local name, pending
  for j = 1, #c, 2 do
    if c[j] == 'name' then name = c[j + 1] elseif c[j] == 'pending' then pending = c[j + 1] end
  end
  if name ~= me and redis.call('EXISTS', ARGV[2] .. name) == 0 then
    if pending == 0 then
      redis.call('XGROUP', 'DELCONSUMER', q, g, name)
    elseif budget > 0 then
      for _, p in ipairs(redis.call('XPENDING', q, g, '-', '+', budget, name)) do
        budget = budget - 1
        local e = redis.call('XCLAIM', q, g, me, 0, p[1])[1]
        local id, f = false, e and e[2]
        if f then
          for j = 1, #f, 2 do if f[j] == 'id' then id = f[j + 1] end end
        end
        local meta = id and redis.call('HGET', ARGV[3] .. id, 'meta')
        if meta then
          out[#out + 1] = {id, meta}
        else
          redis.call('XACK', q, g, p[1])
          redis.call('XDEL', q, p[1])
        end
      end
    end
  end
end
return {budget, out}
