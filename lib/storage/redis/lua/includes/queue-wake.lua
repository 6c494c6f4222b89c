--[[
  NOTIFY (the queue's list of wake-up tokens for long polls, built from its base KEYS[1]: keys.ts,
  queueKeys) and wake(), which pushes one token. A script includes only the queue parts it uses:
  each defined part costs every call of it.
]]

local NOTIFY = KEYS[1] .. 'notify'
local function wake()
  redis.call('LPUSH', NOTIFY, 1)
  redis.call('LTRIM', NOTIFY, '0', '63')
end
