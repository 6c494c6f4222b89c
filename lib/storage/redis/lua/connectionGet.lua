--[[
  KEYS[1] conns; ARGV: base, id → {identity, scopes, resources, connected, exp, token, tokexp,
  {channels}} or nil. A registration made before tokens were recorded has token and tokexp ''.
]]
--- @include "includes/connection-helpers"

local base, id = ARGV[1], ARGV[2]
local f = redis.call('HMGET', base .. 'conn:' .. id, 'identity', 'scopes', 'resources', 'connected', 'exp', 'token', 'tokexp')
if not f[1] or tonumber(f[5]) <= now_ms() then return nil end
return {f[1], f[2], f[3], f[4], f[5], f[6] or '', f[7] or '', redis.call('SMEMBERS', base .. 'chans:' .. id)}
