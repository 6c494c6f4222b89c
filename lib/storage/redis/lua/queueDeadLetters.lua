--[[
  KEYS: the queue's base (its keys are built from it: keys.ts, queueKeys).
  ARGV: maxAttempts, limit → flat list of id, payload, attempts, enqueuedMs, diedMs.
]]
--- @include "includes/now"
--- @include "includes/queue-settle"

local base = KEYS[1]
settle(now_ms(), tonumber(ARGV[1]), base .. 'ready', base .. 'delayed', base .. 'inflight')
local dead = redis.call('ZRANGE', base .. 'dead', 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #dead, 2 do
  local f = redis.call('HMGET', base .. 'm:' .. dead[i], 'p', 'a', 'e')
  if f[1] then
    out[#out + 1] = dead[i]
    out[#out + 1] = f[1]
    out[#out + 1] = f[2]
    out[#out + 1] = f[3]
    out[#out + 1] = dead[i + 1]
  end
end
return out
