--[[
  KEYS: the queue's base (its keys are built from it: keys.ts, queueKeys).
  ARGV: id, receipt, delayMs, maxAttempts → 1, 0 stale, -1 missing.
]]
--- @include "includes/now"
--- @include "includes/queue-wake"
--- @include "includes/queue-lease"

local id, delay = ARGV[1], tonumber(ARGV[3])
local m = lease(id, ARGV[2])
if m == 'missing' then return -1 end
if m == 'stale' then return 0 end
local now = now_ms()
local base = KEYS[1]
local READY = base .. 'ready'
redis.call('ZREM', base .. 'inflight', id)
redis.call('ZREM', READY, id)
redis.call('HDEL', m, 'r')
if tonumber(redis.call('HGET', m, 'a')) >= tonumber(ARGV[4]) then
  redis.call('ZADD', base .. 'dead', now, id)
  return 1
end
if delay > 0 then
  redis.call('ZADD', base .. 'delayed', now + delay, id)
else
  redis.call('ZADD', READY, redis.call('HGET', m, 's'), id)
end
wake() -- a long poll takes it, or recomputes when the delay passes
return 1
