--[[
  KEYS: ready, delayed, inflight, dead, notify.
  ARGV: base, id, receipt, visibilityMs → 1, 0 stale, -1 missing.
]]
--- @include "includes/queue-helpers"

local m = lease(ARGV[1], ARGV[2], ARGV[3])
if m == 'missing' then return -1 end
if m == 'stale' then return 0 end
redis.call('ZREM', READY, ARGV[2])
redis.call('ZADD', INFLIGHT, now_ms() + tonumber(ARGV[4]), ARGV[2])
wake() -- a shorter lease ends sooner: a long poll recomputes when to look again
return 1
