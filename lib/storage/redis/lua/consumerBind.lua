--[[
  KEYS[1] deliveries; ARGV: slot, id, receipt, lease end ms → 1 bound, 0 no such slot.
]]
local pending = redis.call('HGET', KEYS[1], ARGV[1])
if not pending then return 0 end
local d = cjson.decode(pending)
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[2], cjson.encode({c = d.c, r = ARGV[3], e = ARGV[4]}))
return 1
