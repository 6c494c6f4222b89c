--[[
  KEYS[1] clusters; ARGV[1] base, ARGV[2] batch → index members removed.
]]
--- @include "includes/session-helpers"

local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local removed = 0
for _, cluster in ipairs(expired) do
  removed = removed + redis.call('ZREMRANGEBYSCORE', ARGV[1] .. 'cluster:' .. cluster, '-inf', now)
  refresh_cluster(ARGV[1], KEYS[1], cluster, now)
end
return removed
