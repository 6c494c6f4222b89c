--[[
  KEYS: the queue's base (its keys are built from it: queue-helpers).
  ARGV: id, payload, delayMs, dedupId ('' = none), dedupWindowMs → {id, duplicate}.
]]
--- @include "includes/queue-helpers"

local base, id, delay, dedup = BASE, ARGV[1], tonumber(ARGV[3]), ARGV[4]
if dedup ~= '' then
  local first = redis.call('GET', base .. 'dd:' .. dedup)
  if first then return {first, 1} end
  redis.call('SET', base .. 'dd:' .. dedup, id, 'PX', ARGV[5])
end
local now = now_ms()
local seq = redis.call('INCR', base .. 'seq')
redis.call('HSET', base .. 'm:' .. id, 'p', ARGV[2], 's', seq, 'e', now, 'a', 0)
if delay > 0 then
  redis.call('ZADD', DELAYED, now + delay, id)
else
  redis.call('ZADD', READY, seq, id)
end
-- Wakes one long poll: it takes the message, or recomputes when the delay passes.
wake_waiter()
return {id, 0}
