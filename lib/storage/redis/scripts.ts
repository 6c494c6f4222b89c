/**
 * Lua scripts: every multi-step operation runs as one script, so it is atomic and one round
 * trip. Scripts read the clock with TIME, so every client agrees on expiry whatever its own
 * clock says. A script touches only keys of one hash tag: the keys it is given and keys it
 * builds from the `base` argument (the tag's prefix), as BullMQ does for job keys; so every
 * script runs on Redis Cluster and ElastiCache Serverless.
 *
 * User JSON never passes through Lua's cjson (it would round numbers to 14 digits): values
 * are stored and answered as the caller's JSON text.
 */

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

/** KEYS[1] key → {value, pttl} or nil. */
export const kvGetEntry: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `local v = redis.call('GET', KEYS[1])
if not v then return nil end
return {v, redis.call('PTTL', KEYS[1])}`,
};

/** KEYS[1] key; ARGV[1] '' = persist, 'ttl' or 'at'; ARGV[2] ms → 1 or 0 when missing. */
export const kvExpire: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '' then redis.call('PERSIST', KEYS[1])
elseif ARGV[1] == 'ttl' then redis.call('PEXPIRE', KEYS[1], ARGV[2])
else redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1`,
};

/**
 * KEYS[1] key; ARGV[1] by → the new value; an error reply 'KST_CONFLICT …' when the value is
 * not an integer or the result leaves ±(2^53−1). The TTL is kept.
 */
export const kvIncr: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `local v = redis.call('GET', KEYS[1])
local current = 0
if v then
  if not string.match(v, '^%-?%d+$') or string.len(v) > 17 then
    return redis.error_reply('KST_CONFLICT not an integer')
  end
  current = tonumber(v)
  if math.abs(current) > 9007199254740991 then return redis.error_reply('KST_CONFLICT not a safe integer') end
end
local n = current + tonumber(ARGV[1])
if math.abs(n) > 9007199254740991 then return redis.error_reply('KST_CONFLICT overflow') end
local text = string.format('%.0f', n)
if text == '-0' then text = '0' end
if v then redis.call('SET', KEYS[1], text, 'KEEPTTL') else redis.call('SET', KEYS[1], text) end
return text`,
};

// ---------------------------------------------------------------------------------------
// sessions: one hash tag for the whole store, so one script can update a session and every
// index. Keys (base = '<prefix>{s}:'): sess:<id> (hash), cluster:<clusterId> and corr:<id>
// (zsets of session id → expiry ms), clusters (zset of cluster id → latest expiry ms), names
// (zset, all scores 0: the members of clusters, for keyset pages by ZRANGEBYLEX; it expires
// with clusters).

export const SESSION_FIELDS = ['cluster', 'user', 'corr', 'svc', 'data', 'created', 'last', 'exp', 'ttl'];
const SESSION_HELPERS = `${NOW}
local FIELDS = {${SESSION_FIELDS.map((f) => `'${f}'`).join(', ')}}
-- Keeps an index key alive exactly as long as its latest member.
local function index_add(key, score, member)
  redis.call('ZADD', key, score, member)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', key, top[2])
end
local function index_remove(key, member, now)
  redis.call('ZREM', key, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', key, top[2]) end
end
-- clusters: cluster id → the latest expiry among its sessions.
local function refresh_cluster(base, clusters, cluster, now)
  local ckey = base .. 'cluster:' .. cluster
  redis.call('ZREMRANGEBYSCORE', ckey, '-inf', now)
  local top = redis.call('ZRANGE', ckey, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('ZADD', clusters, top[2], cluster)
    redis.call('ZADD', base .. 'names', 0, cluster)
    local latest = redis.call('ZRANGE', clusters, -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', clusters, latest[2])
    redis.call('PEXPIREAT', base .. 'names', latest[2])
  else
    redis.call('ZREM', clusters, cluster)
    redis.call('ZREM', base .. 'names', cluster)
  end
end
`;

/**
 * KEYS[1] clusters; ARGV: base, id, cluster, user, corr, svc, data, ttlMs ('' = null), then
 * created, last and exp ms of a replay ('' = from TIME) → {created, exp, last}.
 */
export const sessionCreate: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${SESSION_HELPERS}
local base, id, cluster, corr = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local ttl = tonumber(ARGV[8])
local now = now_ms()
local created = tonumber(ARGV[9]) or now
local last = tonumber(ARGV[10]) or now
local exp = tonumber(ARGV[11]) or (now + ttl)
local key = base .. 'sess:' .. id
redis.call('HSET', key, 'cluster', cluster, 'user', ARGV[4], 'corr', corr, 'svc', ARGV[6], 'data', ARGV[7],
  'created', string.format('%.0f', created), 'last', string.format('%.0f', last), 'exp', string.format('%.0f', exp),
  'ttl', ttl)
redis.call('PEXPIREAT', key, exp)
index_add(base .. 'cluster:' .. cluster, exp, id)
if corr ~= '' then index_add(base .. 'corr:' .. corr, exp, id) end
refresh_cluster(base, KEYS[1], cluster, now)
return {created, exp, last}`,
};

/**
 * KEYS[1] clusters; ARGV: base, id, ttlMs or '', then last and exp ms of a replay ('' = from
 * TIME) → the session's fields, or nil.
 */
export const sessionKeepAlive: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${SESSION_HELPERS}
local base, id = ARGV[1], ARGV[2]
local key = base .. 'sess:' .. id
local s = redis.call('HMGET', key, 'cluster', 'corr', 'ttl')
if not s[1] then return nil end
local now = now_ms()
local ttl = tonumber(ARGV[3]) or tonumber(s[3])
local exp = tonumber(ARGV[5]) or (now + ttl)
redis.call('HSET', key, 'last', string.format('%.0f', tonumber(ARGV[4]) or now), 'exp', string.format('%.0f', exp))
redis.call('PEXPIREAT', key, exp)
local ckey = base .. 'cluster:' .. s[1]
redis.call('ZADD', ckey, exp, id)
local top = redis.call('ZRANGE', ckey, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', ckey, top[2])
if s[2] ~= '' then
  local rkey = base .. 'corr:' .. s[2]
  redis.call('ZADD', rkey, exp, id)
  local rtop = redis.call('ZRANGE', rkey, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', rkey, rtop[2])
end
refresh_cluster(base, KEYS[1], s[1], now)
return redis.call('HMGET', key, unpack(FIELDS))`,
};

/** KEYS[1] clusters; ARGV: base, id → 1 when a live session was ended, else 0. */
export const sessionEnd: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${SESSION_HELPERS}
local base, id = ARGV[1], ARGV[2]
local key = base .. 'sess:' .. id
local s = redis.call('HMGET', key, 'cluster', 'corr')
if not s[1] then return 0 end
local now = now_ms()
redis.call('DEL', key)
index_remove(base .. 'cluster:' .. s[1], id, now)
if s[2] ~= '' then index_remove(base .. 'corr:' .. s[2], id, now) end
refresh_cluster(base, KEYS[1], s[1], now)
return 1`,
};

/** KEYS[1] an index zset; ARGV[1] base → flat list of id followed by the session's fields. */
export const sessionList: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${SESSION_HELPERS}
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local out = {}
for _, id in ipairs(ids) do
  local s = redis.call('HMGET', ARGV[1] .. 'sess:' .. id, unpack(FIELDS))
  if s[1] then
    out[#out + 1] = id
    for i = 1, #FIELDS do out[#out + 1] = s[i] end
  end
end
return out`,
};

/**
 * KEYS: clusters, names; ARGV: after (a cluster id; '' = from the start), count → {more (1 when
 * names holds ids after the last one looked at), the last id looked at or '', then the live
 * cluster ids among the next `count` names}. When names and clusters disagree in size (clusters
 * written before names existed), names is rebuilt from clusters first.
 */
export const sessionClusterPage: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `${NOW}
local clusters, names = KEYS[1], KEYS[2]
if redis.call('ZCARD', clusters) ~= redis.call('ZCARD', names) then
  redis.call('DEL', names)
  for _, cluster in ipairs(redis.call('ZRANGE', clusters, 0, -1)) do redis.call('ZADD', names, 0, cluster) end
  local latest = redis.call('ZRANGE', clusters, -1, -1, 'WITHSCORES')
  if latest[2] then redis.call('PEXPIREAT', names, latest[2]) end
end
local now = now_ms()
local from = '-'
if ARGV[1] ~= '' then from = '(' .. ARGV[1] end
local ids = redis.call('ZRANGEBYLEX', names, from, '+', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {0, ''}
for _, cluster in ipairs(ids) do
  local exp = redis.call('ZSCORE', clusters, cluster)
  if exp and tonumber(exp) > now then out[#out + 1] = cluster end
end
local last = ids[#ids]
if last then
  out[2] = last
  if #redis.call('ZRANGEBYLEX', names, '(' .. last, '+', 'LIMIT', 0, 1) > 0 then out[1] = 1 end
end
return out`,
};

/** KEYS[1] clusters; ARGV[1] cluster id → 1 or 0. One lookup: the hot path. */
export const sessionIsClusterActive: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${NOW}
local exp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if exp and tonumber(exp) > now_ms() then return 1 end
return 0`,
};

/** KEYS[1] clusters; ARGV[1] base, ARGV[2] batch → index members removed. */
export const sessionSweep: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${SESSION_HELPERS}
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local removed = 0
for _, cluster in ipairs(expired) do
  removed = removed + redis.call('ZREMRANGEBYSCORE', ARGV[1] .. 'cluster:' .. cluster, '-inf', now)
  refresh_cluster(ARGV[1], KEYS[1], cluster, now)
end
return removed`,
};

// ---------------------------------------------------------------------------------------
// queues: one hash tag per queue. Keys (base = '<prefix>{q:<name>}:'): ready (zset id → enqueue
// sequence: FIFO), delayed (zset id → visible-at ms), inflight (zset id → lease end ms), dead
// (zset id → death ms), seq (counter), notify (list: wake-up tokens for long polls), m:<id>
// (hash: p payload, s sequence, e enqueued ms, a attempts, r current receipt), dd:<dedupId>.

const QUEUE_KEYS = 5; // ready, delayed, inflight, dead, notify
const QUEUE_HELPERS = `${NOW}
local READY, DELAYED, INFLIGHT, DEAD, NOTIFY = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local function wake()
  redis.call('LPUSH', NOTIFY, 1)
  redis.call('LTRIM', NOTIFY, 0, 63)
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
`;

/** ARGV: base, id, payload, delayMs, dedupId ('' = none), dedupWindowMs → {id, duplicate}. */
export const queueSend: ScriptDefinition = {
  numberOfKeys: QUEUE_KEYS,
  lua: `${QUEUE_HELPERS}
local base, id, delay, dedup = ARGV[1], ARGV[2], tonumber(ARGV[4]), ARGV[5]
if dedup ~= '' then
  local first = redis.call('GET', base .. 'dd:' .. dedup)
  if first then return {first, 1} end
  redis.call('SET', base .. 'dd:' .. dedup, id, 'PX', ARGV[6])
end
local now = now_ms()
local seq = redis.call('INCR', base .. 'seq')
redis.call('HSET', base .. 'm:' .. id, 'p', ARGV[3], 's', seq, 'e', now, 'a', 0)
if delay > 0 then
  redis.call('ZADD', DELAYED, now + delay, id)
else
  redis.call('ZADD', READY, seq, id)
end
-- Wakes one long poll: it takes the message, or recomputes when the delay passes.
wake()
return {id, 0}`,
};

/**
 * ARGV: base, max, visibilityMs, maxAttempts, receipt prefix → {count, dueInMs, then per
 * message id, receipt, payload, attempts, enqueuedMs}. dueInMs (-1 = none) tells a long poll
 * how long until a delay passes or a lease ends with no send to wake it.
 */
export const queueReceive: ScriptDefinition = {
  numberOfKeys: QUEUE_KEYS,
  lua: `${QUEUE_HELPERS}
local base, max, vis = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
settle(base, now, tonumber(ARGV[4]))
local popped = redis.call('ZPOPMIN', READY, max)
local out = {0, -1}
local n = 0
for i = 1, #popped, 2 do
  local id = popped[i]
  local m = base .. 'm:' .. id
  local fields = redis.call('HMGET', m, 'p', 'e')
  if fields[1] then
    n = n + 1
    local attempts = redis.call('HINCRBY', m, 'a', 1)
    local receipt = ARGV[5] .. n
    redis.call('HSET', m, 'r', receipt)
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
if n > 0 and redis.call('ZCARD', READY) > 0 then wake() end
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
end
return out`,
};

/** ARGV: (none) → pushes one wake-up token for the next long poll. */
export const queueWake: ScriptDefinition = {
  numberOfKeys: QUEUE_KEYS,
  lua: `${QUEUE_HELPERS}
wake()
return 1`,
};

/** ARGV: base, id, receipt → 1 acked, 0 stale receipt, -1 no such message. */
export const queueAck: ScriptDefinition = {
  numberOfKeys: QUEUE_KEYS,
  lua: `${QUEUE_HELPERS}
local m = lease(ARGV[1], ARGV[2], ARGV[3])
if m == 'missing' then return -1 end
if m == 'stale' then return 0 end
redis.call('DEL', m)
redis.call('ZREM', INFLIGHT, ARGV[2])
redis.call('ZREM', READY, ARGV[2])
return 1`,
};

/** ARGV: base, id, receipt, delayMs, maxAttempts → 1, 0 stale, -1 missing. */
export const queueNack: ScriptDefinition = {
  numberOfKeys: QUEUE_KEYS,
  lua: `${QUEUE_HELPERS}
local id, delay = ARGV[2], tonumber(ARGV[4])
local m = lease(ARGV[1], id, ARGV[3])
if m == 'missing' then return -1 end
if m == 'stale' then return 0 end
local now = now_ms()
redis.call('ZREM', INFLIGHT, id)
redis.call('ZREM', READY, id)
redis.call('HDEL', m, 'r')
if tonumber(redis.call('HGET', m, 'a')) >= tonumber(ARGV[5]) then
  redis.call('ZADD', DEAD, now, id)
  return 1
end
if delay > 0 then
  redis.call('ZADD', DELAYED, now + delay, id)
else
  redis.call('ZADD', READY, redis.call('HGET', m, 's'), id)
end
wake() -- a long poll takes it, or recomputes when the delay passes
return 1`,
};

/** ARGV: base, id, receipt, visibilityMs → 1, 0 stale, -1 missing. */
export const queueExtend: ScriptDefinition = {
  numberOfKeys: QUEUE_KEYS,
  lua: `${QUEUE_HELPERS}
local m = lease(ARGV[1], ARGV[2], ARGV[3])
if m == 'missing' then return -1 end
if m == 'stale' then return 0 end
redis.call('ZREM', READY, ARGV[2])
redis.call('ZADD', INFLIGHT, now_ms() + tonumber(ARGV[4]), ARGV[2])
wake() -- a shorter lease ends sooner: a long poll recomputes when to look again
return 1`,
};

/** ARGV: base, maxAttempts → {waiting (ready + delayed), delayed, inFlight, dead}. */
export const queueStats: ScriptDefinition = {
  numberOfKeys: QUEUE_KEYS,
  lua: `${QUEUE_HELPERS}
local now = now_ms()
settle(ARGV[1], now, tonumber(ARGV[2]))
local waiting = redis.call('ZCARD', READY) + redis.call('ZCARD', DELAYED)
local delayed = redis.call('ZCOUNT', DELAYED, '(' .. now, '+inf')
return {waiting, delayed, redis.call('ZCARD', INFLIGHT), redis.call('ZCARD', DEAD)}`,
};

/** ARGV: base, maxAttempts, limit → flat list of id, payload, attempts, enqueuedMs, diedMs. */
export const queueDeadLetters: ScriptDefinition = {
  numberOfKeys: QUEUE_KEYS,
  lua: `${QUEUE_HELPERS}
settle(ARGV[1], now_ms(), tonumber(ARGV[2]))
local dead = redis.call('ZRANGE', DEAD, 0, tonumber(ARGV[3]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #dead, 2 do
  local f = redis.call('HMGET', ARGV[1] .. 'm:' .. dead[i], 'p', 'a', 'e')
  if f[1] then
    out[#out + 1] = dead[i]
    out[#out + 1] = f[1]
    out[#out + 1] = f[2]
    out[#out + 1] = f[3]
    out[#out + 1] = dead[i + 1]
  end
end
return out`,
};

/** ARGV: base, maxAttempts, limit → messages moved back to ready with attempts reset. */
export const queueRedrive: ScriptDefinition = {
  numberOfKeys: QUEUE_KEYS,
  lua: `${QUEUE_HELPERS}
settle(ARGV[1], now_ms(), tonumber(ARGV[2]))
local dead = redis.call('ZRANGE', DEAD, 0, tonumber(ARGV[3]) - 1)
local moved = 0
for _, id in ipairs(dead) do
  redis.call('ZREM', DEAD, id)
  local m = ARGV[1] .. 'm:' .. id
  local s = redis.call('HGET', m, 's')
  if s then
    redis.call('HSET', m, 'a', 0)
    redis.call('ZADD', READY, s, id)
    moved = moved + 1
  end
end
if moved > 0 then wake() end
return moved`,
};

// ---------------------------------------------------------------------------------------
// events: one hash tag per channel. Keys: s (stream; entry id '<seq>-1'), n (sequence).

/**
 * KEYS: stream, counter; ARGV: json, maxHistory, pub/sub channel → {seq, publishedMs}.
 * The live message is '<seq>:<ms>:<json>'.
 */
export const eventPublish: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `${NOW}
local seq = redis.call('INCR', KEYS[2])
local now = now_ms()
redis.call('XADD', KEYS[1], 'MAXLEN', '=', ARGV[2], seq .. '-1', 'm', ARGV[1], 't', now)
-- History is the record; live delivery is best effort (subscribers fill gaps from history),
-- so a refused PUBLISH must not fail a publish that is already stored.
redis.pcall('PUBLISH', ARGV[3], seq .. ':' .. now .. ':' .. ARGV[1])
return {seq, now}`,
};

// ---------------------------------------------------------------------------------------
// tokens: one hash tag. Keys (base = '<prefix>{t}:'): h:<sha256> (the record as JSON, expiring
// with the token), ids (hash id → sha256), issuers (hash id → the id of its issuer, for tokens
// that have one), c:<id> (set: ids of the tokens <id> issued), order (zset, all scores 0: the
// position '<createdAt ISO>|<id>' of every token in ids, for keyset pages by ZRANGEBYLEX), pos
// (hash id → its position). A token is live while its h: key exists.

/** Forgets token `id` (its index entries and its place in its issuer's set); answers its hash or nil. */
const TOKEN_FORGET = `local function forget_token(base, ids, id)
  local hash = redis.call('HGET', ids, id)
  redis.call('HDEL', ids, id)
  local position = redis.call('HGET', base .. 'pos', id)
  if position then
    redis.call('ZREM', base .. 'order', position)
    redis.call('HDEL', base .. 'pos', id)
  end
  local issuer = redis.call('HGET', base .. 'issuers', id)
  if issuer then
    redis.call('SREM', base .. 'c:' .. issuer, id)
    redis.call('HDEL', base .. 'issuers', id)
  end
  return hash
end
`;

/**
 * KEYS[1] ids; ARGV: base, id, hash, record JSON, expiresAtMs or '', issuerId or '', position
 * → 1, or 0 (nothing written) when the issuer is not live.
 */
export const tokenInsert: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `local base, id, issuer = ARGV[1], ARGV[2], ARGV[6]
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
return 1`,
};

/** KEYS[1] ids; ARGV: base, id → the live token's record (JSON) or nil. */
export const tokenGet: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `local hash = redis.call('HGET', KEYS[1], ARGV[2])
if not hash then return nil end
return redis.call('GET', ARGV[1] .. 'h:' .. hash)`,
};

/**
 * KEYS[1] ids; ARGV: base, id → the ids of the live tokens revoked: the token, then every token
 * below it (breadth first); empty when the token was not live.
 */
export const tokenRevoke: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${TOKEN_FORGET}
local base = ARGV[1]
local queue, revoked = {ARGV[2]}, {}
local i = 1
while i <= #queue do
  local id = queue[i]
  local hash = forget_token(base, KEYS[1], id)
  if hash and redis.call('DEL', base .. 'h:' .. hash) == 1 then
    revoked[#revoked + 1] = id
  elseif i == 1 then
    -- Not live: nothing revoked (what is below an expired token has expired with it).
    queue = {}
  end
  if #queue > 0 then
    local children_key = base .. 'c:' .. id
    for _, child in ipairs(redis.call('SMEMBERS', children_key)) do queue[#queue + 1] = child end
    redis.call('DEL', children_key)
  end
  i = i + 1
end
return revoked`,
};

/**
 * KEYS: ids, order; ARGV: base, after (a position; '' = from the start), count → {more (1 when
 * order holds positions after the last one looked at), the last position looked at or '', then
 * the records (JSON) of the live tokens among the next `count` positions}. Forgets expired
 * tokens it meets. When order and ids disagree in size (tokens written before order existed),
 * order is rebuilt from ids first, once.
 */
export const tokenPage: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `${TOKEN_FORGET}
local base, ids, order = ARGV[1], KEYS[1], KEYS[2]
local function forget_dead(id, position)
  forget_token(base, ids, id)
  redis.call('ZREM', order, position)
  redis.call('DEL', base .. 'c:' .. id)
end
if redis.call('HLEN', ids) ~= redis.call('ZCARD', order) then
  redis.call('DEL', order, base .. 'pos')
  local all = redis.call('HGETALL', ids)
  for i = 1, #all, 2 do
    local record = redis.call('GET', base .. 'h:' .. all[i + 1])
    if record then
      local position = cjson.decode(record).createdAt .. '|' .. all[i]
      redis.call('ZADD', order, 0, position)
      redis.call('HSET', base .. 'pos', all[i], position)
    else
      forget_dead(all[i], '')
    end
  end
end
local from = '-'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
local positions = redis.call('ZRANGEBYLEX', order, from, '+', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {0, ''}
for _, position in ipairs(positions) do
  -- The position is the 24-character ISO time, '|', the id.
  local id = string.sub(position, 26)
  local hash = redis.call('HGET', ids, id)
  local record = hash and redis.call('GET', base .. 'h:' .. hash)
  if record then out[#out + 1] = record else forget_dead(id, position) end
end
local last = positions[#positions]
if last then
  out[2] = last
  if #redis.call('ZRANGEBYLEX', order, '(' .. last, '+', 'LIMIT', 0, 1) > 0 then out[1] = 1 end
end
return out`,
};

/** KEYS[1] ids; ARGV[1] base → records (JSON) of live tokens; forgets expired ones. */
export const tokenList: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${TOKEN_FORGET}
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local record = redis.call('GET', ARGV[1] .. 'h:' .. all[i + 1])
  if record then out[#out + 1] = record else
    forget_token(ARGV[1], KEYS[1], all[i])
    redis.call('DEL', ARGV[1] .. 'c:' .. all[i])
  end
end
return out`,
};

// ---------------------------------------------------------------------------------------
// audit: one hash tag. Keys (base = '<prefix>{a}:'): log (stream of every entry), i:<identity>
// (stream of that identity's entries, same ids), identities (set).

/** Lua formats large numbers in exponent form: stream ids and bounds go through this. */
const MS = `local function ms_text(n) return string.format('%.0f', n) end
`;

/**
 * KEYS: log, identities; ARGV: base, maxEntries, maxAgeMs, identity, action, resource,
 * correlationId, outcome, details ('' = null) → the entry id. The log is trimmed to exactly
 * maxEntries; identity streams approximately (the query and the sweep bound them by the log).
 */
export const auditAppend: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `${NOW}${MS}
local base, max_entries = ARGV[1], ARGV[2]
local oldest = ms_text(math.max(0, now_ms() - tonumber(ARGV[3])))
local fields = {'i', ARGV[4], 'a', ARGV[5], 'r', ARGV[6], 'c', ARGV[7], 'o', ARGV[8], 'd', ARGV[9]}
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '=', max_entries, '*', unpack(fields))
local ikey = base .. 'i:' .. ARGV[4]
redis.call('XADD', ikey, 'MAXLEN', '~', max_entries, id, unpack(fields))
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('XTRIM', KEYS[1], 'MINID', '~', oldest)
redis.call('XTRIM', ikey, 'MINID', '~', oldest)
return id`,
};

/**
 * KEYS: log; ARGV: base, identity ('' = all), sinceMs ('' = none), untilMs ('' = none; > 0),
 * limit, order, maxAgeMs → stream entries within both retention bounds.
 */
export const auditQuery: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${NOW}${MS}
local base, identity, limit = ARGV[1], ARGV[2], tonumber(ARGV[5])
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then return {} end
-- Entries older than the log's first (trimmed by count) or than maxAge are never answered.
local floor = math.max(0, now_ms() - tonumber(ARGV[7]))
if ARGV[3] ~= '' and tonumber(ARGV[3]) > floor then floor = tonumber(ARGV[3]) end
local start = ms_text(floor) .. '-0'
local first_ms, first_seq = string.match(first[1][1], '^(%d+)-(%d+)$')
if tonumber(first_ms) > floor or (tonumber(first_ms) == floor and tonumber(first_seq) > 0) then start = first[1][1] end
local stop = '+'
if ARGV[4] ~= '' then stop = '(' .. ARGV[4] .. '-0' end
local stream = KEYS[1]
if identity ~= '' then stream = base .. 'i:' .. identity end
if ARGV[6] == 'asc' then return redis.call('XRANGE', stream, start, stop, 'COUNT', limit) end
return redis.call('XREVRANGE', stream, stop, start, 'COUNT', limit)`,
};

/**
 * KEYS: log, identities; ARGV: base, maxAgeMs, batch → entries removed from the log. Trims the
 * log exactly by age, then a batch of identity streams (a cursor walks the identity set across
 * sweeps) down to the log's first entry, deleting empty ones.
 */
export const auditSweep: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `${NOW}${MS}
local base = ARGV[1]
local removed = redis.call('XTRIM', KEYS[1], 'MINID', ms_text(math.max(0, now_ms() - tonumber(ARGV[2]))))
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local cursor_key = base .. 'sweep-cursor'
local scan = redis.call('SSCAN', KEYS[2], redis.call('GET', cursor_key) or '0', 'COUNT', tonumber(ARGV[3]))
redis.call('SET', cursor_key, scan[1])
for _, identity in ipairs(scan[2]) do
  local key = base .. 'i:' .. identity
  if first[1] then redis.call('XTRIM', key, 'MINID', first[1][1]) else redis.call('DEL', key) end
  if redis.call('XLEN', key) == 0 then
    redis.call('DEL', key)
    redis.call('SREM', KEYS[2], identity)
  end
end
return removed`,
};

// ---------------------------------------------------------------------------------------
// connections (the WebSocket relay's registry): every key under ONE hash tag, '{ws}', so one
// script updates a connection and both directions of its subscriptions on Redis Cluster too
// (no CROSSSLOT). Keys (base = '<prefix>{ws}:'):
//   conns            zset connection id → expiry ms (liveness for subscribers, and the sweep's index)
//   conn:<id>        hash identity, scopes (JSON), resources (JSON), connected ms, exp ms,
//                    token (its token's id), tokexp (the token's expiry ms, '' = never)
//   chans:<id>       set of the connection's channels
//   subs:<channel>   zset (all scores 0, so ZRANGEBYLEX pages in byte order) of subscribed ids
//   tok:<token id>   zset (all scores 0) of the ids of connections opened with the token
//   tokenof          hash connection id → token id (what the sweep needs once conn:<id> is gone)
//   tokexp           zset connection id → its token's expiry ms (only tokens that expire)
// A connection is live while exp > TIME. conn:<id> expires exactly then (PEXPIREAT); the sets
// that the sweep needs to undo a connection's subscriptions live GRACE_MS longer, and conns,
// subs:<channel>, tok:<token id>, tokenof and tokexp as long as their latest member plus
// GRACE_MS, so Redis drops everything of a dead connection even when no sweep runs.

/** How long a dead connection's indexes outlive it, for the sweep to clean up. */
export const CONNECTION_GRACE_MS = 3_600_000;

const CONNECTION_HELPERS = `${NOW}local GRACE = ${CONNECTION_GRACE_MS}
-- Removes the connection from every channel it is subscribed to, and its channel set.
local function drop_channels(base, id)
  local chans = base .. 'chans:' .. id
  for _, channel in ipairs(redis.call('SMEMBERS', chans)) do
    redis.call('ZREM', base .. 'subs:' .. channel, id)
  end
  redis.call('DEL', chans)
end
-- The connection's expiry ms when it is live, else nil.
local function live_exp(base, id, now)
  local exp = tonumber(redis.call('HGET', base .. 'conn:' .. id, 'exp'))
  if exp and exp > now then return exp end
  return nil
end
-- Makes a key live at least until at (never shortens it).
local function keep_until(key, at, now)
  local left = redis.call('PTTL', key)
  if left < 0 or now + left < at then redis.call('PEXPIREAT', key, at) end
end
-- Whether the connection is live and was opened with the token.
local function live_of_token(base, id, token, now)
  local f = redis.call('HMGET', base .. 'conn:' .. id, 'token', 'exp')
  return f[1] == token and tonumber(f[2]) ~= nil and tonumber(f[2]) > now
end
-- Removes the connection from its token's indexes.
local function drop_token(base, id)
  local token = redis.call('HGET', base .. 'tokenof', id)
  if token then redis.call('ZREM', base .. 'tok:' .. token, id) end
  redis.call('HDEL', base .. 'tokenof', id)
  redis.call('ZREM', base .. 'tokexp', id)
end
`;

/**
 * KEYS[1] conns; ARGV: base, id, identity, scopes JSON, resources JSON, ttlMs, token id, token
 * expiry ms ('' = never), maxPerToken ('' = no limit) → {connected, exp}, or 0 (nothing
 * changed) when maxPerToken other live connections hold the token. Replaces an earlier
 * registration and drops its subscriptions.
 */
export const connectionRegister: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${CONNECTION_HELPERS}
local base, id, token, tokexp = ARGV[1], ARGV[2], ARGV[7], ARGV[8]
local now = now_ms()
local tok = base .. 'tok:' .. token
local max = tonumber(ARGV[9])
if max then
  local others = 0
  for _, other in ipairs(redis.call('ZRANGE', tok, 0, -1)) do
    if not live_of_token(base, other, token, now) then redis.call('ZREM', tok, other)
    elseif other ~= id then others = others + 1 end
  end
  if others >= max then return 0 end
end
local exp = now + tonumber(ARGV[6])
local key = base .. 'conn:' .. id
drop_channels(base, id)
drop_token(base, id)
redis.call('DEL', key)
redis.call('HSET', key, 'identity', ARGV[3], 'scopes', ARGV[4], 'resources', ARGV[5], 'connected', now, 'exp', exp,
  'token', token, 'tokexp', tokexp)
redis.call('PEXPIREAT', key, exp)
redis.call('ZADD', KEYS[1], exp, id)
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(top[2]) + GRACE)
redis.call('ZADD', tok, 0, id)
keep_until(tok, exp + GRACE, now)
redis.call('HSET', base .. 'tokenof', id, token)
keep_until(base .. 'tokenof', exp + GRACE, now)
if tokexp ~= '' then
  redis.call('ZADD', base .. 'tokexp', tokexp, id)
  keep_until(base .. 'tokexp', exp + GRACE, now)
end
return {now, exp}`,
};

/**
 * KEYS[1] conns; ARGV: base, id → {identity, scopes, resources, connected, exp, token, tokexp,
 * {channels}} or nil. A registration made before tokens were recorded has token and tokexp ''.
 */
export const connectionGet: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${CONNECTION_HELPERS}
local base, id = ARGV[1], ARGV[2]
local f = redis.call('HMGET', base .. 'conn:' .. id, 'identity', 'scopes', 'resources', 'connected', 'exp', 'token', 'tokexp')
if not f[1] or tonumber(f[5]) <= now_ms() then return nil end
return {f[1], f[2], f[3], f[4], f[5], f[6] or '', f[7] or '', redis.call('SMEMBERS', base .. 'chans:' .. id)}`,
};

/** KEYS[1] conns; ARGV: base, id, channel, maxChannels → 1 subscribed, 0 not live, -1 full. */
export const connectionSubscribe: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${CONNECTION_HELPERS}
local base, id, channel = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local exp = live_exp(base, id, now)
if not exp then return 0 end
local chans = base .. 'chans:' .. id
if redis.call('SISMEMBER', chans, channel) == 1 then return 1 end
if redis.call('SCARD', chans) >= tonumber(ARGV[4]) then return -1 end
redis.call('SADD', chans, channel)
redis.call('PEXPIREAT', chans, exp + GRACE)
local subs = base .. 'subs:' .. channel
redis.call('ZADD', subs, 0, id)
keep_until(subs, exp + GRACE, now)
return 1`,
};

/** KEYS[1] conns; ARGV: base, id, channel → 1 when a live connection was subscribed, else 0. */
export const connectionUnsubscribe: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${CONNECTION_HELPERS}
local base, id, channel = ARGV[1], ARGV[2], ARGV[3]
local removed = redis.call('SREM', base .. 'chans:' .. id, channel)
redis.call('ZREM', base .. 'subs:' .. channel, id)
if removed == 1 and live_exp(base, id, now_ms()) then return 1 end
return 0`,
};

/**
 * KEYS[1] conns; ARGV: base, channel, after ('' = from the start), limit → up to limit + 1 live
 * subscriber ids after \`after\`, in byte order. Members of dead connections met on the way are
 * removed (the sweep would, later).
 */
export const connectionSubscribers: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${CONNECTION_HELPERS}
local base, limit = ARGV[1], tonumber(ARGV[4])
local subs = base .. 'subs:' .. ARGV[2]
local now = now_ms()
local min = '-'
if ARGV[3] ~= '' then min = '(' .. ARGV[3] end
local out = {}
while #out <= limit do
  local batch = redis.call('ZRANGEBYLEX', subs, min, '+', 'LIMIT', 0, limit + 1)
  for _, id in ipairs(batch) do
    local exp = redis.call('ZSCORE', KEYS[1], id)
    if exp and tonumber(exp) > now then
      out[#out + 1] = id
      if #out > limit then break end
    else
      redis.call('ZREM', subs, id)
    end
  end
  if #batch <= limit then break end
  min = '(' .. batch[#batch]
end
return out`,
};

/** KEYS[1] conns; ARGV: base, id → 1 when a live connection was removed, else 0. */
export const connectionRemove: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${CONNECTION_HELPERS}
local base, id = ARGV[1], ARGV[2]
local exp = live_exp(base, id, now_ms())
drop_channels(base, id)
drop_token(base, id)
redis.call('DEL', base .. 'conn:' .. id)
redis.call('ZREM', KEYS[1], id)
if exp then return 1 end
return 0`,
};

/** KEYS[1] conns; ARGV: base, batch → expired connections removed with their subscriptions. */
export const connectionSweep: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${CONNECTION_HELPERS}
local base = ARGV[1]
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(dead) do
  drop_channels(base, id)
  drop_token(base, id)
  redis.call('DEL', base .. 'conn:' .. id)
  redis.call('ZREM', KEYS[1], id)
end
return #dead`,
};

/**
 * KEYS[1] conns; ARGV: base, token id, after ('' = from the start), limit → up to limit + 1
 * live ids of the token's connections after \`after\`, in byte order. Members of dead
 * connections met on the way are removed.
 */
export const connectionsOfToken: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${CONNECTION_HELPERS}
local base, token, limit = ARGV[1], ARGV[2], tonumber(ARGV[4])
local tok = base .. 'tok:' .. token
local now = now_ms()
local min = '-'
if ARGV[3] ~= '' then min = '(' .. ARGV[3] end
local out = {}
while #out <= limit do
  local batch = redis.call('ZRANGEBYLEX', tok, min, '+', 'LIMIT', 0, limit + 1)
  for _, id in ipairs(batch) do
    if live_of_token(base, id, token, now) then
      out[#out + 1] = id
      if #out > limit then break end
    else
      redis.call('ZREM', tok, id)
    end
  end
  if #batch <= limit then break end
  min = '(' .. batch[#batch]
end
return out`,
};

/**
 * KEYS[1] conns; ARGV: base, limit → up to limit live connection ids whose token expired by
 * TIME, earliest expiry first. Members of dead connections met on the way are removed.
 */
export const connectionsWithExpiredToken: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${CONNECTION_HELPERS}
local base, limit = ARGV[1], tonumber(ARGV[2])
local tokexp = base .. 'tokexp'
local now = now_ms()
local out = {}
while #out < limit do
  -- Live members stay, dead ones are removed: the next batch starts after the live ones found.
  local batch = redis.call('ZRANGEBYSCORE', tokexp, '-inf', now, 'LIMIT', #out, limit - #out)
  if #batch == 0 then break end
  for _, id in ipairs(batch) do
    if live_exp(base, id, now) then out[#out + 1] = id else redis.call('ZREM', tokexp, id) end
  end
end
return out`,
};

export const scripts = {
  kvGetEntry,
  kvExpire,
  kvIncr,
  sessionCreate,
  sessionKeepAlive,
  sessionEnd,
  sessionList,
  sessionClusterPage,
  sessionIsClusterActive,
  sessionSweep,
  queueSend,
  queueReceive,
  queueWake,
  queueAck,
  queueNack,
  queueExtend,
  queueStats,
  queueDeadLetters,
  queueRedrive,
  eventPublish,
  tokenInsert,
  tokenGet,
  tokenPage,
  tokenRevoke,
  tokenList,
  auditAppend,
  auditQuery,
  auditSweep,
  connectionRegister,
  connectionGet,
  connectionSubscribe,
  connectionUnsubscribe,
  connectionSubscribers,
  connectionRemove,
  connectionSweep,
  connectionsOfToken,
  connectionsWithExpiredToken,
} as const;

export type ScriptName = keyof typeof scripts;
