--[[
  KEYS[1] conns; ARGV: base, channel, after ('' = from the start), limit → up to limit + 1 live
  subscriber ids after `after`, in byte order. Members of dead connections met on the way are
  removed (the sweep would, later).
]]
--- @include "includes/connection-helpers"

local base, limit = ARGV[1], tonumber(ARGV[4])
local subs = base .. 'subs:' .. ARGV[2]
local now = now_ms()
local min = '-'
if ARGV[3] ~= '' then min = '(' .. ARGV[3] end
local out = {}
while #out <= limit do
  local batch = redis.call('ZRANGEBYLEX', subs, min, '+', 'LIMIT', 0, limit + 1)
  for _, id in ipairs(batch) do
    local exp = redis.call('ZSCORE', KEYS[1], id)
    if exp and tonumber(exp) > now then
      out[#out + 1] = id
      if #out > limit then break end
    else
      redis.call('ZREM', subs, id)
    end
  end
  if #batch <= limit then break end
  min = '(' .. batch[#batch]
end
return out
