--[[
  KEYS: stream, counter; ARGV: json, maxHistory, pub/sub channel → '<seq>:<publishedMs>' (a
  string costs Redis less to answer than a table).
  The live message is '<seq>:<ms>:<json>'.
]]
--- @include "includes/now"

local seq = redis.call('INCR', KEYS[2])
local now = now_ms()
redis.call('XADD', KEYS[1], 'MAXLEN', '=', ARGV[2], seq .. '-1', 'm', ARGV[1], 't', now)
-- History is the record; live delivery is best effort (subscribers fill gaps from history),
-- so a refused PUBLISH must not fail a publish that is already stored.
local head = seq .. ':' .. now
redis.pcall('PUBLISH', ARGV[3], head .. ':' .. ARGV[1])
return head
