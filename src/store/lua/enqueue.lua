-- KEYS: queue, seq, heartbeat, [dedup key]. ARGV: consumer, event key prefix, event, meta,
-- dedup expiry (unix ms, or empty), lease ms. Returns the new id.
local q, g, me = KEYS[1], 'hookgate', ARGV[1]
if redis.call('EXISTS', q) == 0 then redis.call('XGROUP', 'CREATE', q, g, '0', 'MKSTREAM') end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('SET', KEYS[2], string.format('%d', ms * 1000))
end
local id = string.format('%d', redis.call('INCR', KEYS[2]))
local sid = redis.call('XADD', q, '*', 'id', id)
redis.call('HSET', ARGV[2] .. id, 'event', ARGV[3], 'meta', ARGV[4], 'sid', sid)
local read = redis.call('XREADGROUP', 'GROUP', g, me, 'STREAMS', q, '>')
local entries = read and read[1] and read[1][2] or {}
if #entries == 0 or entries[#entries][1] ~= sid then
  return redis.error_reply('queue entry ' .. sid .. ' was not read by this replica')
end
if ARGV[5] ~= '' then redis.call('SET', KEYS[4], 'delivered', 'PXAT', ARGV[5]) end
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[3], 'w', 'PX', ARGV[6]) end
return id
