--[[
  KEYS: the queue's base (its keys are built from it: queue-helpers).
  ARGV: id, receipt, visibilityMs → 1, 0 stale, -1 missing.
]]
--- @include "includes/queue-helpers"

local m = lease(BASE, ARGV[1], ARGV[2])
if m == 'missing' then return -1 end
if m == 'stale' then return 0 end
redis.call('ZREM', READY, ARGV[1])
redis.call('ZADD', INFLIGHT, now_ms() + tonumber(ARGV[3]), ARGV[1])
wake() -- a shorter lease ends sooner: a long poll recomputes when to look again
return 1
