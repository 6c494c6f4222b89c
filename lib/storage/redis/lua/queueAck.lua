--[[
  KEYS: the queue's base (its keys are built from it: keys.ts, queueKeys).
  ARGV: id, receipt → 1 acked, 0 stale receipt, -1 no such message.
]]
--- @include "includes/queue-lease"

local m = lease(ARGV[1], ARGV[2])
if m == 'missing' then return -1 end
if m == 'stale' then return 0 end
redis.call('DEL', m)
-- A message is in one of the sets at most: one whose lease ended waits in ready.
local base = KEYS[1]
if redis.call('ZREM', base .. 'inflight', ARGV[1]) == 0 then redis.call('ZREM', base .. 'ready', ARGV[1]) end
return 1
