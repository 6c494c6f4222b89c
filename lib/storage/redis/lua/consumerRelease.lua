--[[
  KEYS[1] deliveries; ARGV: key (slot or message id) → the connection that held it, or false.
]]
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
return cjson.decode(held).c
