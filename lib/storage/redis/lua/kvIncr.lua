--[[
  KEYS[1] key; ARGV[1] by → the new value; an error reply 'KST_CONFLICT …' when the value is
  not an integer or the result leaves ±(2^53−1). The TTL is kept.
]]
local v = redis.call('GET', KEYS[1])
local current = 0
if v then
  if not string.match(v, '^%-?%d+$') or string.len(v) > 17 then
    return redis.error_reply('KST_CONFLICT not an integer')
  end
  current = tonumber(v)
  if math.abs(current) > 9007199254740991 then return redis.error_reply('KST_CONFLICT not a safe integer') end
end
local n = current + tonumber(ARGV[1])
if math.abs(n) > 9007199254740991 then return redis.error_reply('KST_CONFLICT overflow') end
local text = string.format('%.0f', n)
if text == '-0' then text = '0' end
if v then redis.call('SET', KEYS[1], text, 'KEEPTTL') else redis.call('SET', KEYS[1], text) end
return text
