--[[
  Reads kv keys for a data migration.
  KEYS: kv keys → TIME's two parts, then each key's value (nil when missing or not a string) and PTTL.
]]
local t = redis.call('TIME')
local out = {t[1], t[2]}
for i, key in ipairs(KEYS) do
  local v = redis.pcall('GET', key)
  if type(v) == 'table' then v = false end
  out[#out + 1] = v
  out[#out + 1] = redis.call('PTTL', key)
end
return out
