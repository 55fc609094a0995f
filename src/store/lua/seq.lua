-- KEYS: seq. The next event id, for an enqueue whose queue is in another slot. The counter
-- starts from Redis's clock, so ids never repeat after a Redis that lost its data restarts.
if redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('SET', KEYS[1], string.format('%d', ms * 1000))
end
return redis.call('INCR', KEYS[1])
