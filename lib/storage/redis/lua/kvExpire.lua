--[[
  KEYS[1] key; ARGV[1] '' = persist, 'ttl' or 'at'; ARGV[2] ms → 1 or 0 when missing.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '' then redis.call('PERSIST', KEYS[1])
elseif ARGV[1] == 'ttl' then redis.call('PEXPIRE', KEYS[1], ARGV[2])
else redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1
