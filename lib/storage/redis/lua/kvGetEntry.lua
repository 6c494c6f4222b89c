--[[
  Lua scripts: every multi-step operation runs as one script, so it is atomic and one round
  trip. Scripts read the clock with TIME, so every client agrees on expiry whatever its own
  clock says. A script touches only keys of one hash tag: the keys it is given and keys it
  builds from the `base` argument (the tag's prefix), as BullMQ does for job keys; so every
  script runs on Redis Cluster and ElastiCache Serverless.
  User JSON never passes through Lua's cjson (it would round numbers to 14 digits): values
  are stored and answered as the caller's JSON text.
  const NOW = `local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  `;
  export interface ScriptDefinition {
    numberOfKeys: number;
    lua: string;
  }
  // ---------------------------------------------------------------------------------------
  // kv
  KEYS[1] key → {value, pttl} or nil.
]]
local v = redis.call('GET', KEYS[1])
if not v then return nil end
return {v, redis.call('PTTL', KEYS[1])}
