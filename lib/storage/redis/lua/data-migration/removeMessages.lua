--[[
  Removes moved queue messages after a data migration.
  KEYS: ready, delayed, inflight, dead; ARGV: base, ids… → messages removed.
]]
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  n = n + redis.call('DEL', ARGV[1] .. 'm:' .. id)
  for k = 1, 4 do redis.call('ZREM', KEYS[k], id) end
end
return n
