--[[
  KEYS[1] clusters; ARGV: base, id, cluster, user, corr, svc, data, ttlMs ('' = null), then
  created, last and exp ms of a replay ('' = from TIME) → {created, exp, last}.
]]
--- @include "includes/session-helpers"

local base, id, cluster, corr = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local ttl = tonumber(ARGV[8])
local now = now_ms()
local created = tonumber(ARGV[9]) or now
local last = tonumber(ARGV[10]) or now
local exp = tonumber(ARGV[11]) or (now + ttl)
local key = base .. 'sess:' .. id
redis.call('HSET', key, 'cluster', cluster, 'user', ARGV[4], 'corr', corr, 'svc', ARGV[6], 'data', ARGV[7],
  'created', string.format('%.0f', created), 'last', string.format('%.0f', last), 'exp', string.format('%.0f', exp),
  'ttl', ttl)
redis.call('PEXPIREAT', key, exp)
index_add(base .. 'cluster:' .. cluster, exp, id)
if corr ~= '' then index_add(base .. 'corr:' .. corr, exp, id) end
refresh_cluster(base, KEYS[1], cluster, now)
return {created, exp, last}
