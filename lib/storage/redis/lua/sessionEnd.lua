--[[
  KEYS[1] clusters; ARGV: base, id → 1 when a live session was ended, else 0.
]]
--- @include "includes/session-helpers"

local base, id = ARGV[1], ARGV[2]
local key = base .. 'sess:' .. id
local s = redis.call('HMGET', key, 'cluster', 'corr')
if not s[1] then return 0 end
local now = now_ms()
redis.call('DEL', key)
index_remove(base .. 'cluster:' .. s[1], id, now)
if s[2] ~= '' then index_remove(base .. 'corr:' .. s[2], id, now) end
refresh_cluster(base, KEYS[1], s[1], now)
return 1
