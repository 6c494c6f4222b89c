--[[
  KEYS[1] an index zset; ARGV[1] base → flat list of id followed by the session's fields.
]]
--- @include "includes/session-helpers"

local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local out = {}
for _, id in ipairs(ids) do
  local s = redis.call('HMGET', ARGV[1] .. 'sess:' .. id, unpack(FIELDS))
  if s[1] then
    out[#out + 1] = id
    for i = 1, #FIELDS do out[#out + 1] = s[i] end
  end
end
return out
