--[[
  KEYS[1] ids; ARGV[1] base → records (JSON) of live tokens; forgets expired ones.
]]
--- @include "includes/token-forget"

local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local record = redis.call('GET', ARGV[1] .. 'h:' .. all[i + 1])
  if record then out[#out + 1] = record else
    forget_token(ARGV[1], KEYS[1], all[i])
    redis.call('DEL', ARGV[1] .. 'c:' .. all[i])
  end
end
return out
