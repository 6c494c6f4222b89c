--[[
  KEYS: the queue's base (its keys are built from it: queue-helpers).
  ARGV: maxAttempts → {waiting (ready + delayed), delayed, inFlight, dead}.
]]
--- @include "includes/queue-helpers"

local now = now_ms()
settle(BASE, now, tonumber(ARGV[1]))
local waiting = redis.call('ZCARD', READY) + redis.call('ZCARD', DELAYED)
local delayed = redis.call('ZCOUNT', DELAYED, '(' .. now, '+inf')
return {waiting, delayed, redis.call('ZCARD', INFLIGHT), redis.call('ZCARD', DEAD)}
