--[[
  KEYS[1] ids; ARGV: base, id, hash, record JSON, expiresAtMs or '', issuerId or '', position
  → 1, or 0 (nothing written) when the issuer is not live.
]]
local base, id, issuer = ARGV[1], ARGV[2], ARGV[6]
if issuer ~= '' then
  local issuer_hash = redis.call('HGET', KEYS[1], issuer)
  if not issuer_hash or redis.call('EXISTS', base .. 'h:' .. issuer_hash) == 0 then return 0 end
  redis.call('SADD', base .. 'c:' .. issuer, id)
  redis.call('HSET', base .. 'issuers', id, issuer)
end
local key = base .. 'h:' .. ARGV[3]
if ARGV[5] ~= '' then redis.call('SET', key, ARGV[4], 'PXAT', ARGV[5]) else redis.call('SET', key, ARGV[4]) end
redis.call('HSET', KEYS[1], id, ARGV[3])
redis.call('ZADD', base .. 'order', 0, ARGV[7])
redis.call('HSET', base .. 'pos', id, ARGV[7])
return 1
