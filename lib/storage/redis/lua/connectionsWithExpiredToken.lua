--[[
  KEYS[1] conns; ARGV: base, limit → up to limit live connection ids whose token expired by
  TIME, earliest expiry first. Members of dead connections met on the way are removed.
]]
--- @include "includes/connection-helpers"

local base, limit = ARGV[1], tonumber(ARGV[2])
local tokexp = base .. 'tokexp'
local now = now_ms()
local out = {}
while #out < limit do
  -- Live members stay, dead ones are removed: the next batch starts after the live ones found.
  local batch = redis.call('ZRANGEBYSCORE', tokexp, '-inf', now, 'LIMIT', #out, limit - #out)
  if #batch == 0 then break end
  for _, id in ipairs(batch) do
    if live_exp(base, id, now) then out[#out + 1] = id else redis.call('ZREM', tokexp, id) end
  end
end
return out
