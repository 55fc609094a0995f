-- Trims the journal: the oldest events beyond ARGV[1], then those whose id sorts before
-- ARGV[2] (the first id young enough to keep). KEYS: the id set, the event hash.
-- Returns {removed for being over the count, removed for age, events left}.
local function drop(ids)
  if #ids > 0 then
    redis.call('ZREM', KEYS[1], unpack(ids))
    redis.call('HDEL', KEYS[2], unpack(ids))
  end
  return #ids
end
local full = 0
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if over > 0 then
  full = drop(redis.call('ZRANGE', KEYS[1], 0, math.min(over, 5000) - 1))
end
local aged = drop(redis.call('ZRANGEBYLEX', KEYS[1], '-', '(' .. ARGV[2], 'LIMIT', 0, 5000))
return {full, aged, redis.call('ZCARD', KEYS[1])}
