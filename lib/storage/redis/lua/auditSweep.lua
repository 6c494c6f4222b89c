--[[
  KEYS: log, identities; ARGV: base, maxAgeMs, batch → entries removed from the log. Trims the
  log exactly by age, then a batch of identity streams (a cursor walks the identity set across
  sweeps) down to the log's first entry, deleting empty ones.
]]
--- @include "includes/now"
--- @include "includes/ms-text"

local base = ARGV[1]
local removed = redis.call('XTRIM', KEYS[1], 'MINID', ms_text(math.max(0, now_ms() - tonumber(ARGV[2]))))
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local cursor_key = base .. 'sweep-cursor'
local scan = redis.call('SSCAN', KEYS[2], redis.call('GET', cursor_key) or '0', 'COUNT', tonumber(ARGV[3]))
redis.call('SET', cursor_key, scan[1])
for _, identity in ipairs(scan[2]) do
  local key = base .. 'i:' .. identity
  if first[1] then redis.call('XTRIM', key, 'MINID', first[1][1]) else redis.call('DEL', key) end
  if redis.call('XLEN', key) == 0 then
    redis.call('DEL', key)
    redis.call('SREM', KEYS[2], identity)
  end
end
return removed
