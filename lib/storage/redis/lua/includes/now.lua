--[[
  now_ms(): the server's clock (TIME) in milliseconds, so every client agrees on expiry.
]]
local function now_ms()
  local t = redis.call('TIME')
  -- Arithmetic turns TIME's strings into numbers: no tonumber calls.
  return t[1] * 1000 + math.floor(t[2] / 1000)
end
