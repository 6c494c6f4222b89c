--[[
  Queues: BASE (KEYS[1], every queue script's one key: the queue's tag prefix), the queue's keys
  built from it (keys.ts, queueKeys), wake(), wake_waiter(), settle() and lease().
]]
--- @include "now"

-- One declared key routes the call to the queue's slot; every key below shares its hash tag. A
-- key built here costs Redis less than one more argument.
local BASE = KEYS[1]
local READY, DELAYED, INFLIGHT, DEAD, NOTIFY = BASE .. 'ready', BASE .. 'delayed', BASE .. 'inflight',
  BASE .. 'dead', BASE .. 'notify'
local function wake()
  redis.call('LPUSH', NOTIFY, 1)
  redis.call('LTRIM', NOTIFY, 0, 63)
end
-- NOTIFY .. ':w' counts the long polls between an empty receive and the next one (queueReceive
-- keeps it). A send wakes only when one waits: with none, the LPUSH and LTRIM are saved. A poll
-- that never came back leaves the count high until the key expires: extra wake-ups, never a lost one.
local function wake_waiter()
  if redis.call('EXISTS', NOTIFY .. ':w') == 1 then wake() end
end
-- Moves due delayed messages to ready and ends expired leases (bounded work per call).
local function settle(base, now, max_attempts)
  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do
    redis.call('ZREM', DELAYED, id)
    local s = redis.call('HGET', base .. 'm:' .. id, 's')
    if s then redis.call('ZADD', READY, s, id) end
  end
  local ended = redis.call('ZRANGEBYSCORE', INFLIGHT, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1000)
  for i = 1, #ended, 2 do
    local id = ended[i]
    redis.call('ZREM', INFLIGHT, id)
    local m = base .. 'm:' .. id
    local a = redis.call('HGET', m, 'a')
    if a then
      if tonumber(a) >= max_attempts then
        redis.call('HDEL', m, 'r')
        -- It died when its last lease ended, not when this call noticed.
        redis.call('ZADD', DEAD, ended[i + 1], id)
      else
        -- The receipt stays valid until the next delivery replaces it: a late ack still counts.
        redis.call('ZADD', READY, redis.call('HGET', m, 's'), id)
      end
    end
  end
end
-- Checks a lease: 'missing', 'stale' or the message key. A lease that ended is honoured until
-- the message is delivered again (which replaces the receipt) or dies (which clears it).
local function lease(base, id, receipt)
  local m = base .. 'm:' .. id
  local r = redis.call('HMGET', m, 's', 'r')
  if not r[1] then return 'missing' end
  if r[2] ~= receipt then return 'stale' end
  return m
end
