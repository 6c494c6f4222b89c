--[[
  KEYS: ready, delayed, inflight, dead, notify.
  ARGV: base, maxAttempts, limit → flat list of id, payload, attempts, enqueuedMs, diedMs.
]]
--- @include "includes/queue-helpers"

settle(ARGV[1], now_ms(), tonumber(ARGV[2]))
local dead = redis.call('ZRANGE', DEAD, 0, tonumber(ARGV[3]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #dead, 2 do
  local f = redis.call('HMGET', ARGV[1] .. 'm:' .. dead[i], 'p', 'a', 'e')
  if f[1] then
    out[#out + 1] = dead[i]
    out[#out + 1] = f[1]
    out[#out + 1] = f[2]
    out[#out + 1] = f[3]
    out[#out + 1] = dead[i + 1]
  end
end
return out
