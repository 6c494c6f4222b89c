--[[
  KEYS: consumers, deliveries. ARGV: slot, now ms → {connection, visibility ms} of the consumer
  the slot was reserved on (the least loaded with room; ties: the one served longest ago, then
  the lowest id), or false when none has room. Ended leases are dropped first.
]]
local now = tonumber(ARGV[2])
local consumers = redis.call('HGETALL', KEYS[1])
if #consumers == 0 then return false end
local load = {}
local deliveries = redis.call('HGETALL', KEYS[2])
for i = 1, #deliveries, 2 do
  local d = cjson.decode(deliveries[i + 1])
  if tonumber(d.e) <= now then redis.call('HDEL', KEYS[2], deliveries[i])
  else load[d.c] = (load[d.c] or 0) + 1 end
end
local best, bestLoad, bestLast, bestRecord
for i = 1, #consumers, 2 do
  local id = consumers[i]
  local c = cjson.decode(consumers[i + 1])
  local n = load[id] or 0
  local last = tonumber(c.l)
  if n < tonumber(c.m) and (best == nil or n < bestLoad or (n == bestLoad and (last < bestLast
      or (last == bestLast and id < best)))) then
    best, bestLoad, bestLast, bestRecord = id, n, last, c
  end
end
if best == nil then return false end
bestRecord.l = ARGV[2]
redis.call('HSET', KEYS[1], best, cjson.encode(bestRecord))
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode({c = best, r = '', e = tostring(now + tonumber(bestRecord.v))}))
return {best, bestRecord.v}
