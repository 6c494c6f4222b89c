--[[
  KEYS: the queue's base (its keys are built from it: keys.ts, queueKeys).
  ARGV: maxAttempts → {waiting (ready + delayed), delayed, inFlight, dead}.
]]
--- @include "includes/now"
--- @include "includes/queue-settle"

local base = KEYS[1]
local READY, DELAYED, INFLIGHT = base .. 'ready', base .. 'delayed', base .. 'inflight'
local now = now_ms()
settle(now, tonumber(ARGV[1]), READY, DELAYED, INFLIGHT)
local waiting = redis.call('ZCARD', READY) + redis.call('ZCARD', DELAYED)
local delayed = redis.call('ZCOUNT', DELAYED, '(' .. now, '+inf')
return {waiting, delayed, redis.call('ZCARD', INFLIGHT), redis.call('ZCARD', base .. 'dead')}
