--[[
  KEYS: ready, delayed, inflight, dead, notify.
  ARGV: base, maxAttempts, limit → messages moved back to ready with attempts reset.
]]
--- @include "includes/queue-helpers"

settle(ARGV[1], now_ms(), tonumber(ARGV[2]))
local dead = redis.call('ZRANGE', DEAD, 0, tonumber(ARGV[3]) - 1)
local moved = 0
for _, id in ipairs(dead) do
  redis.call('ZREM', DEAD, id)
  local m = ARGV[1] .. 'm:' .. id
  local s = redis.call('HGET', m, 's')
  if s then
    redis.call('HSET', m, 'a', 0)
    redis.call('ZADD', READY, s, id)
    moved = moved + 1
  end
end
if moved > 0 then wake() end
return moved
