--[[
  KEYS: the queue's base (its keys are built from it: keys.ts, queueKeys).
  ARGV: maxAttempts, limit → messages moved back to ready with attempts reset.
]]
--- @include "includes/now"
--- @include "includes/queue-wake"
--- @include "includes/queue-settle"

local base = KEYS[1]
local READY, DEAD = base .. 'ready', base .. 'dead'
settle(now_ms(), tonumber(ARGV[1]), READY, base .. 'delayed', base .. 'inflight')
local dead = redis.call('ZRANGE', DEAD, 0, tonumber(ARGV[2]) - 1)
local moved = 0
for _, id in ipairs(dead) do
  redis.call('ZREM', DEAD, id)
  local m = base .. 'm:' .. id
  local s = redis.call('HGET', m, 's')
  if s then
    redis.call('HSET', m, 'a', 0)
    redis.call('ZADD', READY, s, id)
    moved = moved + 1
  end
end
if moved > 0 then wake() end
return moved
