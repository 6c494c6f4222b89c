--[[
  settle(now, max_attempts, ready, delayed, inflight): moves due delayed messages to ready and ends
  expired leases (bounded work per call). The caller passes the keys it built from its base KEYS[1]
  (keys.ts, queueKeys); dead and message keys are built here, when needed. now and max_attempts
  may be strings: redis.call formats each number argument with snprintf (a few k instructions),
  so constant arguments are written as strings too.
]]

local function settle(now, max_attempts, ready, delayed, inflight)
  local base = KEYS[1]
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', '0', '1000')
  for _, id in ipairs(due) do
    redis.call('ZREM', delayed, id)
    local s = redis.call('HGET', base .. 'm:' .. id, 's')
    if s then redis.call('ZADD', ready, s, id) end
  end
  local ended = redis.call('ZRANGEBYSCORE', inflight, '-inf', now, 'WITHSCORES', 'LIMIT', '0', '1000')
  for i = 1, #ended, 2 do
    local id = ended[i]
    redis.call('ZREM', inflight, id)
    local m = base .. 'm:' .. id
    local a = redis.call('HGET', m, 'a')
    if a then
      if tonumber(a) >= tonumber(max_attempts) then
        redis.call('HDEL', m, 'r')
        -- It died when its last lease ended, not when this call noticed.
        redis.call('ZADD', base .. 'dead', ended[i + 1], id)
      else
        -- The receipt stays valid until the next delivery replaces it: a late ack still counts.
        redis.call('ZADD', ready, redis.call('HGET', m, 's'), id)
      end
    end
  end
end
