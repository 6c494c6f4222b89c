--[[
  KEYS[1] clusters; ARGV: base, id, ttlMs or '', then last and exp ms of a replay ('' = from
  TIME) → the session's fields, or nil.
]]
--- @include "includes/session-helpers"

local base, id = ARGV[1], ARGV[2]
local key = base .. 'sess:' .. id
local s = redis.call('HMGET', key, 'cluster', 'corr', 'ttl')
if not s[1] then return nil end
local now = now_ms()
local ttl = tonumber(ARGV[3]) or tonumber(s[3])
local exp = tonumber(ARGV[5]) or (now + ttl)
redis.call('HSET', key, 'last', string.format('%.0f', tonumber(ARGV[4]) or now), 'exp', string.format('%.0f', exp))
redis.call('PEXPIREAT', key, exp)
local ckey = base .. 'cluster:' .. s[1]
redis.call('ZADD', ckey, exp, id)
local top = redis.call('ZRANGE', ckey, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', ckey, top[2])
if s[2] ~= '' then
  local rkey = base .. 'corr:' .. s[2]
  redis.call('ZADD', rkey, exp, id)
  local rtop = redis.call('ZRANGE', rkey, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', rkey, rtop[2])
end
refresh_cluster(base, KEYS[1], s[1], now)
return redis.call('HMGET', key, unpack(FIELDS))
