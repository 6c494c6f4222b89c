--[[
  KEYS: log, identities; ARGV: base, maxEntries, maxAgeMs, identity, action, resource,
  correlationId, outcome, details ('' = null) → the entry id. The log is trimmed to exactly
  maxEntries; identity streams approximately (the query and the sweep bound them by the log).
]]
--- @include "includes/now"
--- @include "includes/ms-text"

local base, max_entries = ARGV[1], ARGV[2]
local oldest = ms_text(math.max(0, now_ms() - tonumber(ARGV[3])))
local fields = {'i', ARGV[4], 'a', ARGV[5], 'r', ARGV[6], 'c', ARGV[7], 'o', ARGV[8], 'd', ARGV[9]}
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '=', max_entries, '*', unpack(fields))
local ikey = base .. 'i:' .. ARGV[4]
redis.call('XADD', ikey, 'MAXLEN', '~', max_entries, id, unpack(fields))
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('XTRIM', KEYS[1], 'MINID', '~', oldest)
redis.call('XTRIM', ikey, 'MINID', '~', oldest)
return id
