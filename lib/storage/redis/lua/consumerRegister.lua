--[[
  KEYS[1] consumers; ARGV: connection, max, visibility ms → 1. Registers the connection as a
  consumer, or changes its max and visibility; its last claim time stays.
]]
local earlier = redis.call('HGET', KEYS[1], ARGV[1])
local last = '0'
if earlier then last = cjson.decode(earlier).l end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({m = ARGV[2], v = ARGV[3], l = last}))
return 1
