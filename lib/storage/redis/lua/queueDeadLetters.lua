--[[
  KEYS: the queue's base (its keys are built from it: queue-helpers).
  ARGV: maxAttempts, limit → flat list of id, payload, attempts, enqueuedMs, diedMs.
]]
--- @include "includes/queue-helpers"

settle(BASE, now_ms(), tonumber(ARGV[1]))
local dead = redis.call('ZRANGE', DEAD, 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #dead, 2 do
  local f = redis.call('HMGET', BASE .. 'm:' .. dead[i], 'p', 'a', 'e')
  if f[1] then
    out[#out + 1] = dead[i]
    out[#out + 1] = f[1]
    out[#out + 1] = f[2]
    out[#out + 1] = f[3]
    out[#out + 1] = dead[i + 1]
  end
end
return out
