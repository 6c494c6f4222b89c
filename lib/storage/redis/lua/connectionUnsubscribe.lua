--[[
  KEYS[1] conns; ARGV: base, id, channel → 1 when a live connection was subscribed, else 0.
]]
--- @include "includes/connection-helpers"

local base, id, channel = ARGV[1], ARGV[2], ARGV[3]
local removed = redis.call('SREM', base .. 'chans:' .. id, channel)
redis.call('ZREM', base .. 'subs:' .. channel, id)
if removed == 1 and live_exp(base, id, now_ms()) then return 1 end
return 0
