--[[
  KEYS: the queue's base (its keys are built from it: queue-helpers).
  ARGV: id, receipt → 1 acked, 0 stale receipt, -1 no such message.
]]
--- @include "includes/queue-helpers"

local m = lease(BASE, ARGV[1], ARGV[2])
if m == 'missing' then return -1 end
if m == 'stale' then return 0 end
redis.call('DEL', m)
-- A message is in one of the sets at most: one whose lease ended waits in ready.
if redis.call('ZREM', INFLIGHT, ARGV[1]) == 0 then redis.call('ZREM', READY, ARGV[1]) end
return 1
