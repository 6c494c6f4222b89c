--[[
  KEYS[1] clusters; ARGV[1] cluster id → 1 or 0. One lookup: the hot path.
]]
--- @include "includes/now"

local exp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if exp and tonumber(exp) > now_ms() then return 1 end
return 0
