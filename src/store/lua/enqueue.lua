-- KEYS: queue, heartbeat, [dedup key], [seq]. ARGV: consumer, event key prefix, event, meta,
-- dedup expiry (unix ms, or empty: no dedup key), lease ms, id (or empty: taken from seq).
-- Returns the id.
local q, g, me = KEYS[1], 'hookgate', ARGV[1]
local n = 3
local dedup = false
if ARGV[5] ~= '' then dedup, n = KEYS[3], 4 end
local id = ARGV[7]
if id == '' then
  if redis.call('EXISTS', KEYS[n]) == 0 then
    local t = redis.call('TIME')
    local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('SET', KEYS[n], string.format('%d', ms * 1000))
  end
  id = string.format('%d', redis.call('INCR', KEYS[n]))
elseif redis.call('EXISTS', ARGV[2] .. id) == 1 then
  -- A counter that a failover rolled back: never overwrite a stored event.
  return redis.error_reply('event id ' .. id .. ' is taken')
end
if redis.call('EXISTS', q) == 0 then redis.call('XGROUP', 'CREATE', q, g, '0', 'MKSTREAM') end
local sid = redis.call('XADD', q, '*', 'id', id)
redis.call('HSET', ARGV[2] .. id, 'event', ARGV[3], 'meta', ARGV[4], 'sid', sid)
local read = redis.call('XREADGROUP', 'GROUP', g, me, 'STREAMS', q, '>')
local entries = read and read[1] and read[1][2] or {}
if #entries == 0 or entries[#entries][1] ~= sid then
  return redis.error_reply('queue entry ' .. sid .. ' was not read by this replica')
end
if dedup then redis.call('SET', dedup, 'delivered', 'PXAT', ARGV[5]) end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], 'w', 'PX', ARGV[6]) end
return id
