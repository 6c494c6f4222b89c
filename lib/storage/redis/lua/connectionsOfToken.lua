--[[
  KEYS[1] conns; ARGV: base, token id, after ('' = from the start), limit → up to limit + 1
  live ids of the token's connections after `after`, in byte order. Members of dead
  connections met on the way are removed.
]]
--- @include "includes/connection-helpers"

local base, token, limit = ARGV[1], ARGV[2], tonumber(ARGV[4])
local tok = base .. 'tok:' .. token
local now = now_ms()
local min = '-'
if ARGV[3] ~= '' then min = '(' .. ARGV[3] end
local out = {}
while #out <= limit do
  local batch = redis.call('ZRANGEBYLEX', tok, min, '+', 'LIMIT', 0, limit + 1)
  for _, id in ipairs(batch) do
    if live_of_token(base, id, token, now) then
      out[#out + 1] = id
      if #out > limit then break end
    else
      redis.call('ZREM', tok, id)
    end
  end
  if #batch <= limit then break end
  min = '(' .. batch[#batch]
end
return out
