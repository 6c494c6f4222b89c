--[[
  KEYS: ready, delayed, inflight, dead, notify.
  ARGV: base, maxAttempts → {waiting (ready + delayed), delayed, inFlight, dead}.
]]
--- @include "includes/queue-helpers"

local now = now_ms()
settle(ARGV[1], now, tonumber(ARGV[2]))
local waiting = redis.call('ZCARD', READY) + redis.call('ZCARD', DELAYED)
local delayed = redis.call('ZCOUNT', DELAYED, '(' .. now, '+inf')
return {waiting, delayed, redis.call('ZCARD', INFLIGHT), redis.call('ZCARD', DEAD)}
