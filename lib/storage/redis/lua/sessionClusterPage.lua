--[[
  KEYS: clusters, names; ARGV: after (a cluster id; '' = from the start), count → {more (1 when
  names holds ids after the last one looked at), the last id looked at or '', then the live
  cluster ids among the next `count` names}. When names and clusters disagree in size (clusters
  written before names existed), names is rebuilt from clusters first.
]]
--- @include "includes/now"

local clusters, names = KEYS[1], KEYS[2]
if redis.call('ZCARD', clusters) ~= redis.call('ZCARD', names) then
  redis.call('DEL', names)
  for _, cluster in ipairs(redis.call('ZRANGE', clusters, 0, -1)) do redis.call('ZADD', names, 0, cluster) end
  local latest = redis.call('ZRANGE', clusters, -1, -1, 'WITHSCORES')
  if latest[2] then redis.call('PEXPIREAT', names, latest[2]) end
end
local now = now_ms()
local from = '-'
if ARGV[1] ~= '' then from = '(' .. ARGV[1] end
local ids = redis.call('ZRANGEBYLEX', names, from, '+', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {0, ''}
for _, cluster in ipairs(ids) do
  local exp = redis.call('ZSCORE', clusters, cluster)
  if exp and tonumber(exp) > now then out[#out + 1] = cluster end
end
local last = ids[#ids]
if last then
  out[2] = last
  if #redis.call('ZRANGEBYLEX', names, '(' .. last, '+', 'LIMIT', 0, 1) > 0 then out[1] = 1 end
end
return out
