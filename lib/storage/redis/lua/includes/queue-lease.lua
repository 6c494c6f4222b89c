--[[
  lease(id, receipt): checks a lease of the queue at KEYS[1]: 'missing', 'stale' or the message
  key. A lease that ended is honoured until the message is delivered again (which replaces the
  receipt) or dies (which clears it).
]]

local function lease(id, receipt)
  local m = KEYS[1] .. 'm:' .. id
  local r = redis.call('HMGET', m, 's', 'r')
  if not r[1] then return 'missing' end
  if r[2] ~= receipt then return 'stale' end
  return m
end
