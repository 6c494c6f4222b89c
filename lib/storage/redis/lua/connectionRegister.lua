--[[
  KEYS[1] conns; ARGV: base, id, identity, scopes JSON, resources JSON, ttlMs, token id, token
  expiry ms ('' = never), maxPerToken ('' = no limit) → {connected, exp}, or 0 (nothing
  changed) when maxPerToken other live connections hold the token. Replaces an earlier
  registration and drops its subscriptions.
]]
--- @include "includes/connection-helpers"

local base, id, token, tokexp = ARGV[1], ARGV[2], ARGV[7], ARGV[8]
local now = now_ms()
local tok = base .. 'tok:' .. token
local max = tonumber(ARGV[9])
if max then
  local others = 0
  for _, other in ipairs(redis.call('ZRANGE', tok, 0, -1)) do
    if not live_of_token(base, other, token, now) then redis.call('ZREM', tok, other)
    elseif other ~= id then others = others + 1 end
  end
  if others >= max then return 0 end
end
local exp = now + tonumber(ARGV[6])
local key = base .. 'conn:' .. id
drop_channels(base, id)
drop_token(base, id)
redis.call('DEL', key)
redis.call('HSET', key, 'identity', ARGV[3], 'scopes', ARGV[4], 'resources', ARGV[5], 'connected', now, 'exp', exp,
  'token', token, 'tokexp', tokexp)
redis.call('PEXPIREAT', key, exp)
redis.call('ZADD', KEYS[1], exp, id)
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(top[2]) + GRACE)
redis.call('ZADD', tok, 0, id)
keep_until(tok, exp + GRACE, now)
redis.call('HSET', base .. 'tokenof', id, token)
keep_until(base .. 'tokenof', exp + GRACE, now)
if tokexp ~= '' then
  redis.call('ZADD', base .. 'tokexp', tokexp, id)
  keep_until(base .. 'tokexp', exp + GRACE, now)
end
return {now, exp}
