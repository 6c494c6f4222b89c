--[[
  Sessions: FIELDS (a session hash's fields, in the order scripts answer them) and the
  helpers that keep the cluster and correlation indexes expiring with their latest member.
]]
--- @include "now"

local FIELDS = {{SESSION_FIELDS}}
-- Keeps an index key alive exactly as long as its latest member.
local function index_add(key, score, member)
  redis.call('ZADD', key, score, member)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', key, top[2])
end
local function index_remove(key, member, now)
  redis.call('ZREM', key, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', key, top[2]) end
end
-- clusters: cluster id → the latest expiry among its sessions.
local function refresh_cluster(base, clusters, cluster, now)
  local ckey = base .. 'cluster:' .. cluster
  redis.call('ZREMRANGEBYSCORE', ckey, '-inf', now)
  local top = redis.call('ZRANGE', ckey, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('ZADD', clusters, top[2], cluster)
    redis.call('ZADD', base .. 'names', 0, cluster)
    local latest = redis.call('ZRANGE', clusters, -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', clusters, latest[2])
    redis.call('PEXPIREAT', base .. 'names', latest[2])
  else
    redis.call('ZREM', clusters, cluster)
    redis.call('ZREM', base .. 'names', cluster)
  end
end
