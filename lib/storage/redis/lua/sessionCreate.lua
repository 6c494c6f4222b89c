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
if corr ~= '' then index_add(base .. 'corr:' .. corr, exp, id) end
-- What refresh_cluster does, in fewer calls: a new session can only raise its cluster's latest
-- expiry, and the clusters set's (which its key expires with) only to that.
local ckey, clusters, names = base .. 'cluster:' .. cluster, KEYS[1], base .. 'names'
redis.call('ZADD', ckey, exp, id)
redis.call('ZREMRANGEBYSCORE', ckey, '-inf', now)
local top = redis.call('ZRANGE', ckey, -1, -1, 'WITHSCORES')[2]
if not top then
  redis.call('ZREM', clusters, cluster)
  redis.call('ZREM', names, cluster)
  return {created, exp, last}
end
redis.call('PEXPIREAT', ckey, top)
local latest = redis.call('ZRANGE', clusters, -1, -1, 'WITHSCORES')[2]
-- names holds the members of clusters: a cluster already in clusters is in names.
local named = redis.call('ZADD', clusters, top, cluster) == 1 and redis.call('ZADD', names, 0, cluster) == 1
if not latest or tonumber(top) > tonumber(latest) then
  redis.call('PEXPIREAT', clusters, top)
  redis.call('PEXPIREAT', names, top)
elseif named then
  redis.call('PEXPIREAT', names, latest)
end
return {created, exp, last}
