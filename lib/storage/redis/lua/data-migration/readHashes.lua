--[[
  Reads hashes for a data migration.
  KEYS: hashes; ARGV: fields → TIME's two parts, then each hash's fields in order (nil when missing).
]]
local t = redis.call('TIME')
local out = {t[1], t[2]}
for i, key in ipairs(KEYS) do
  local f = redis.pcall('HMGET', key, unpack(ARGV))
  for j = 1, #ARGV do
    if type(f) == 'table' and not f.err and f[j] then out[#out + 1] = f[j] else out[#out + 1] = false end
  end
end
return out
