--[[
  Forgets token `id` (its index entries and its place in its issuer's set); answers its hash or nil.
]]
local function forget_token(base, ids, id)
  local hash = redis.call('HGET', ids, id)
  redis.call('HDEL', ids, id)
  local position = redis.call('HGET', base .. 'pos', id)
  if position then
    redis.call('ZREM', base .. 'order', position)
    redis.call('HDEL', base .. 'pos', id)
  end
  local issuer = redis.call('HGET', base .. 'issuers', id)
  if issuer then
    redis.call('SREM', base .. 'c:' .. issuer, id)
    redis.call('HDEL', base .. 'issuers', id)
  end
  return hash
end
