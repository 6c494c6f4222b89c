--[[
  KEYS: consumers, deliveries → {{consumer id, record, …}, {key, record, …}}.
]]
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
