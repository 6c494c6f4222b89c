--[[
  KEYS: the queue's base (its keys are built from it: keys.ts, queueKeys).
  ARGV: waited ('1': the long poll ending was counted as waiting), wake ('1': push a wake-up
  token for the next long poll) → 1.
]]
--- @include "includes/queue-wake"

if ARGV[1] == '1' then
  local waiters = NOTIFY .. ':w'
  if redis.call('DECR', waiters) <= 0 then redis.call('DEL', waiters) end
end
if ARGV[2] == '1' then wake() end
return 1
