--[[
  KEYS[1] conns; ARGV: base, id → 1 when a live connection was removed, else 0.
]]
--- @include "includes/connection-helpers"

local base, id = ARGV[1], ARGV[2]
local exp = live_exp(base, id, now_ms())
drop_channels(base, id)
drop_token(base, id)
redis.call('DEL', base .. 'conn:' .. id)
redis.call('ZREM', KEYS[1], id)
if exp then return 1 end
return 0
