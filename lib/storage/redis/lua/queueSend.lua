--[[
  KEYS: the queue's base (its keys are built from it: keys.ts, queueKeys).
  ARGV: id, payload, delayMs, dedupId ('' = none), dedupWindowMs → {id, duplicate}.
]]
--- @include "includes/now"
--- @include "includes/ms-text"
--- @include "includes/queue-wake"

local base, id, delay, dedup = KEYS[1], ARGV[1], tonumber(ARGV[3]), ARGV[4]
if dedup ~= '' then
  local first = redis.call('GET', base .. 'dd:' .. dedup)
  if first then return {first, 1} end
  redis.call('SET', base .. 'dd:' .. dedup, id, 'PX', ARGV[5])
end
local now = now_ms()
-- Formatted once for the two commands below (queue-settle says why).
local seq = ms_text(redis.call('INCR', base .. 'seq'))
redis.call('HSET', base .. 'm:' .. id, 'p', ARGV[2], 's', seq, 'e', now, 'a', '0')
if delay > 0 then
  redis.call('ZADD', base .. 'delayed', now + delay, id)
else
  redis.call('ZADD', base .. 'ready', seq, id)
end
-- Wakes one long poll: it takes the message, or recomputes when the delay passes. NOTIFY .. ':w'
-- counts the long polls between an empty receive and the next one (queueReceive keeps it): with
-- none, the LPUSH and LTRIM are saved. A poll that never came back leaves the count high until
-- the key expires: extra wake-ups, never a lost one.
if redis.call('EXISTS', NOTIFY .. ':w') == 1 then wake() end
return {id, 0}
