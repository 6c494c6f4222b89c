--[[
  The connection registry: GRACE (how long a dead connection's indexes outlive it) and the
  helpers that undo a connection's subscriptions and token indexes.
]]
--- @include "now"
local GRACE = {{CONNECTION_GRACE_MS}}
-- Removes the connection from every channel it is subscribed to, and its channel set.
local function drop_channels(base, id)
  local chans = base .. 'chans:' .. id
  for _, channel in ipairs(redis.call('SMEMBERS', chans)) do
    redis.call('ZREM', base .. 'subs:' .. channel, id)
  end
  redis.call('DEL', chans)
end
-- The connection's expiry ms when it is live, else nil.
local function live_exp(base, id, now)
  local exp = tonumber(redis.call('HGET', base .. 'conn:' .. id, 'exp'))
  if exp and exp > now then return exp end
  return nil
end
-- Makes a key live at least until at (never shortens it).
local function keep_until(key, at, now)
  local left = redis.call('PTTL', key)
  if left < 0 or now + left < at then redis.call('PEXPIREAT', key, at) end
end
-- Whether the connection is live and was opened with the token.
local function live_of_token(base, id, token, now)
  local f = redis.call('HMGET', base .. 'conn:' .. id, 'token', 'exp')
  return f[1] == token and tonumber(f[2]) ~= nil and tonumber(f[2]) > now
end
-- Removes the connection from its token's indexes.
local function drop_token(base, id)
  local token = redis.call('HGET', base .. 'tokenof', id)
  if token then redis.call('ZREM', base .. 'tok:' .. token, id) end
  redis.call('HDEL', base .. 'tokenof', id)
  redis.call('ZREM', base .. 'tokexp', id)
end
