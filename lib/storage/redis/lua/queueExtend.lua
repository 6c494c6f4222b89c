--[[
  KEYS: the queue's base (its keys are built from it: keys.ts, queueKeys).
  ARGV: id, receipt, visibilityMs → 1, 0 stale, -1 missing.
]]
--- @include "includes/now"
--- @include "includes/queue-wake"
--- @include "includes/queue-lease"

local m = lease(ARGV[1], ARGV[2])
if m == 'missing' then return -1 end
if m == 'stale' then return 0 end
redis.call('ZREM', KEYS[1] .. 'ready', ARGV[1])
redis.call('ZADD', KEYS[1] .. 'inflight', now_ms() + tonumber(ARGV[3]), ARGV[1])
wake() -- a shorter lease ends sooner: a long poll recomputes when to look again
return 1
