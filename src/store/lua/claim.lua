-- 1: claimed; 2: delivered already; 3: in flight elsewhere.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == 'delivered' then return 2 end
return 3
