--[[
  KEYS[1] ids; ARGV: base, id → the live token's record (JSON) or nil.
]]
local hash = redis.call('HGET', KEYS[1], ARGV[2])
if not hash then return nil end
return redis.call('GET', ARGV[1] .. 'h:' .. hash)
