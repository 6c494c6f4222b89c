--[[
  KEYS[1] deliveries; ARGV: id, lease end ms → 1 held, 0 not.
]]
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held then return 0 end
local d = cjson.decode(held)
d.e = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(d))
return 1
