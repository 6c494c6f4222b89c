--[[
  Lua formats large numbers in exponent form: stream ids and bounds go through this.
]]
local function ms_text(n) return string.format('%.0f', n) end
