--[[
  KEYS: ids, order; ARGV: base, after (a position; '' = from the start), count → {more (1 when
  order holds positions after the last one looked at), the last position looked at or '', then
  the records (JSON) of the live tokens among the next `count` positions}. Forgets expired
  tokens it meets. When order and ids disagree in size (tokens written before order existed),
  order is rebuilt from ids first, once.
]]
--- @include "includes/token-forget"

local base, ids, order = ARGV[1], KEYS[1], KEYS[2]
local function forget_dead(id, position)
  forget_token(base, ids, id)
  redis.call('ZREM', order, position)
  redis.call('DEL', base .. 'c:' .. id)
end
if redis.call('HLEN', ids) ~= redis.call('ZCARD', order) then
  redis.call('DEL', order, base .. 'pos')
  local all = redis.call('HGETALL', ids)
  for i = 1, #all, 2 do
    local record = redis.call('GET', base .. 'h:' .. all[i + 1])
    if record then
      local position = cjson.decode(record).createdAt .. '|' .. all[i]
      redis.call('ZADD', order, 0, position)
      redis.call('HSET', base .. 'pos', all[i], position)
    else
      forget_dead(all[i], '')
    end
  end
end
local from = '-'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
local positions = redis.call('ZRANGEBYLEX', order, from, '+', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {0, ''}
for _, position in ipairs(positions) do
  -- The position is the 24-character ISO time, '|', the id.
  local id = string.sub(position, 26)
  local hash = redis.call('HGET', ids, id)
  local record = hash and redis.call('GET', base .. 'h:' .. hash)
  if record then out[#out + 1] = record else forget_dead(id, position) end
end
local last = positions[#positions]
if last then
  out[2] = last
  if #redis.call('ZRANGEBYLEX', order, '(' .. last, '+', 'LIMIT', 0, 1) > 0 then out[1] = 1 end
end
return out
