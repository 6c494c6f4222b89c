--[[
  KEYS: the queue's base (its keys are built from it: keys.ts, queueKeys).
  ARGV: max, visibilityMs, maxAttempts, receipt prefix, waited ('1': this long poll was
  counted as waiting), waitMs (> 0: count it as waiting if nothing is visible) → {count, dueInMs,
  then per message id, receipt, payload, attempts, enqueuedMs}. dueInMs (-1 = none) tells a long
  poll how long until a delay passes or a lease ends with no send to wake it.
]]
--- @include "includes/now"
--- @include "includes/queue-wake"
--- @include "includes/queue-settle"

local base, vis = KEYS[1], tonumber(ARGV[2])
local READY, DELAYED, INFLIGHT = base .. 'ready', base .. 'delayed', base .. 'inflight'
local waiters = NOTIFY .. ':w'
if ARGV[5] == '1' and redis.call('DECR', waiters) <= 0 then redis.call('DEL', waiters) end
local now = now_ms()
-- One formatting of now for settle's two commands (queue-settle); tostring is exact below 1e14 ms.
settle(tostring(now), ARGV[3], READY, DELAYED, INFLIGHT)
local popped = redis.call('ZPOPMIN', READY, ARGV[1])
local out = {0, -1}
local n = 0
for i = 1, #popped, 2 do
  local id = popped[i]
  local m = base .. 'm:' .. id
  local fields = redis.call('HMGET', m, 'p', 'e', 'a')
  if fields[1] then
    n = n + 1
    local attempts = (tonumber(fields[3]) or 0) + 1
    local receipt = ARGV[4] .. n
    redis.call('HSET', m, 'a', attempts, 'r', receipt)
    redis.call('ZADD', INFLIGHT, now + vis, id)
    out[#out + 1] = id
    out[#out + 1] = receipt
    out[#out + 1] = fields[1]
    out[#out + 1] = attempts
    out[#out + 1] = fields[2]
  end
end
out[1] = n
-- More visible than this call took: pass the wake-up on to the next long poll.
if n > 0 and redis.call('EXISTS', waiters) == 1 and redis.call('ZCARD', READY) > 0 then wake() end
if n == 0 then
  -- Nothing visible: stale wake-up tokens would only make long polls spin.
  redis.call('DEL', NOTIFY)
  local d = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')
  local f = redis.call('ZRANGE', INFLIGHT, 0, 0, 'WITHSCORES')
  local next_due = -1
  if d[2] then next_due = tonumber(d[2]) end
  if f[2] and (next_due < 0 or tonumber(f[2]) < next_due) then next_due = tonumber(f[2]) end
  -- Milliseconds from now by this server's clock: the client's clock may differ.
  if next_due >= 0 then out[2] = math.max(0, next_due - now) end
  -- Counted before this script ends, so a send that follows sees the waiter and wakes it.
  local wait = tonumber(ARGV[6])
  if wait > 0 then
    redis.call('INCR', waiters)
    -- Outlives the wait (and a blocking command's timeout); only ever lengthened.
    local ttl = wait + 60000
    if redis.call('PTTL', waiters) < ttl then redis.call('PEXPIRE', waiters, ttl) end
  end
end
return out
