--[[
  KEYS[1] ids; ARGV: base, id → the ids of the live tokens revoked: the token, then every token
  below it (breadth first); empty when the token was not live.
]]
--- @include "includes/token-forget"

local base = ARGV[1]
local queue, revoked = {ARGV[2]}, {}
local i = 1
while i <= #queue do
  local id = queue[i]
  local hash = forget_token(base, KEYS[1], id)
  if hash and redis.call('DEL', base .. 'h:' .. hash) == 1 then
    revoked[#revoked + 1] = id
  elseif i == 1 then
    -- Not live: nothing revoked (what is below an expired token has expired with it).
    queue = {}
  end
  if #queue > 0 then
    local children_key = base .. 'c:' .. id
    for _, child in ipairs(redis.call('SMEMBERS', children_key)) do queue[#queue + 1] = child end
    redis.call('DEL', children_key)
  end
  i = i + 1
end
return revoked
