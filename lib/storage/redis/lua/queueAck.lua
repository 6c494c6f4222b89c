--[[
  KEYS: ready, delayed, inflight, dead, notify.
  ARGV: base, id, receipt → 1 acked, 0 stale receipt, -1 no such message.
]]
--- @include "includes/queue-helpers"

local m = lease(ARGV[1], ARGV[2], ARGV[3])
if m == 'missing' then return -1 end
if m == 'stale' then return 0 end
redis.call('DEL', m)
redis.call('ZREM', INFLIGHT, ARGV[2])
redis.call('ZREM', READY, ARGV[2])
return 1
