--[[
  KEYS[1] conns; ARGV: base, batch → expired connections removed with their subscriptions.
]]
--- @include "includes/connection-helpers"

local base = ARGV[1]
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(dead) do
  drop_channels(base, id)
  drop_token(base, id)
  redis.call('DEL', base .. 'conn:' .. id)
  redis.call('ZREM', KEYS[1], id)
end
return #dead
