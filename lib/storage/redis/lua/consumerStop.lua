--[[
  KEYS: consumers, deliveries. ARGV: connection, now ms → {consumers left, id, receipt, …}: the
  connection's consumer and deliveries are removed; the pairs are the bound ones whose lease has
  not ended.
]]
local now = tonumber(ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[1])
local out = {redis.call('HLEN', KEYS[1])}
local deliveries = redis.call('HGETALL', KEYS[2])
for i = 1, #deliveries, 2 do
  local d = cjson.decode(deliveries[i + 1])
  if d.c == ARGV[1] then
    redis.call('HDEL', KEYS[2], deliveries[i])
    if d.r ~= '' and tonumber(d.e) > now then
      out[#out + 1] = deliveries[i]
      out[#out + 1] = d.r
    end
  end
end
return out
