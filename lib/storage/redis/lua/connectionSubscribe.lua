--[[
  KEYS[1] conns; ARGV: base, id, channel, maxChannels → 1 subscribed, 0 not live, -1 full.
]]
--- @include "includes/connection-helpers"

local base, id, channel = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local exp = live_exp(base, id, now)
if not exp then return 0 end
local chans = base .. 'chans:' .. id
if redis.call('SISMEMBER', chans, channel) == 1 then return 1 end
if redis.call('SCARD', chans) >= tonumber(ARGV[4]) then return -1 end
redis.call('SADD', chans, channel)
redis.call('PEXPIREAT', chans, exp + GRACE)
local subs = base .. 'subs:' .. channel
redis.call('ZADD', subs, 0, id)
keep_until(subs, exp + GRACE, now)
return 1
