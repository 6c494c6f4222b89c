/**
 * The queue consumers' registry on Redis (driver.ts, `ConsumerDriver`). One hash tag per queue
 * (`<prefix>{qc:<queue>}:`), so each script touches one slot and runs on Redis Cluster:
 * `consumers` (hash: connection id → {m max, v visibility ms, l last claim ms}) and `deliveries`
 * (hash: message or slot id → {c connection, r receipt ('' for a slot), e lease end ms}). A claim
 * is one script: it drops ended leases, counts each consumer's deliveries and reserves a slot on
 * the least-loaded one with room, so concurrent claims never pass a consumer's `max`. Two plain
 * sets index the rest: `<prefix>qcc:<connection id>` (its queues) and `<prefix>qcq` (queues with
 * consumers); they are kept beside the scripts, not in them (other slots).
 *
 * The fields are the caller's strings inside cjson, numbers compared with tonumber: no JSON of
 * the caller's passes through Lua.
 */
import { type ConsumerDriver, compareBytes } from '../driver.js';
import type { HeldDelivery, QueueConsumer } from '../types.js';
import type { RedisClient } from './client.js';
import { tagSafe } from './keys.js';

const SCRIPTS = {
  // KEYS consumers; ARGV connection, max, visibility ms
  register: `
local earlier = redis.call('HGET', KEYS[1], ARGV[1])
local last = '0'
if earlier then last = cjson.decode(earlier).l end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({m = ARGV[2], v = ARGV[3], l = last}))
return 1`,
  // KEYS consumers, deliveries; ARGV slot, now ms → {connection, visibility ms} or false
  claim: `
local now = tonumber(ARGV[2])
local consumers = redis.call('HGETALL', KEYS[1])
if #consumers == 0 then return false end
local load = {}
local deliveries = redis.call('HGETALL', KEYS[2])
for i = 1, #deliveries, 2 do
  local d = cjson.decode(deliveries[i + 1])
  if tonumber(d.e) <= now then redis.call('HDEL', KEYS[2], deliveries[i])
  else load[d.c] = (load[d.c] or 0) + 1 end
end
local best, bestLoad, bestLast, bestRecord
for i = 1, #consumers, 2 do
  local id = consumers[i]
  local c = cjson.decode(consumers[i + 1])
  local n = load[id] or 0
  local last = tonumber(c.l)
  if n < tonumber(c.m) and (best == nil or n < bestLoad or (n == bestLoad and (last < bestLast
      or (last == bestLast and id < best)))) then
    best, bestLoad, bestLast, bestRecord = id, n, last, c
  end
end
if best == nil then return false end
bestRecord.l = ARGV[2]
redis.call('HSET', KEYS[1], best, cjson.encode(bestRecord))
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode({c = best, r = '', e = tostring(now + tonumber(bestRecord.v))}))
return {best, bestRecord.v}`,
  // KEYS deliveries; ARGV slot, id, receipt, lease end ms → 1 bound, 0 no such slot
  bind: `
local pending = redis.call('HGET', KEYS[1], ARGV[1])
if not pending then return 0 end
local d = cjson.decode(pending)
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[2], cjson.encode({c = d.c, r = ARGV[3], e = ARGV[4]}))
return 1`,
  // KEYS deliveries; ARGV key → the connection that held it, or false
  release: `
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
return cjson.decode(held).c`,
  // KEYS deliveries; ARGV id, lease end ms → 1 held, 0 not
  extend: `
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held then return 0 end
local d = cjson.decode(held)
d.e = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(d))
return 1`,
  // KEYS consumers, deliveries; ARGV connection, now ms → {consumers left, id, receipt, …}
  stop: `
local now = tonumber(ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[1])
local out = {redis.call('HLEN', KEYS[1])}
local deliveries = redis.call('HGETALL', KEYS[2])
for i = 1, #deliveries, 2 do
  local d = cjson.decode(deliveries[i + 1])
  if d.c == ARGV[1] then
    redis.call('HDEL', KEYS[2], deliveries[i])
    if d.r ~= '' and tonumber(d.e) > now then
      out[#out + 1] = deliveries[i]
      out[#out + 1] = d.r
    end
  end
end
return out`,
  // KEYS consumers, deliveries → {consumer id, record, …}, {key, record, …}
  list: `
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}`,
} as const;

type ScriptName = keyof typeof SCRIPTS;
const NUMBER_OF_KEYS: Record<ScriptName, number> = {
  register: 1,
  claim: 2,
  bind: 1,
  release: 1,
  extend: 1,
  stop: 2,
  list: 2,
};

type Reply = string | number | null | Reply[];

export function redisConsumers(client: RedisClient, prefix: string): ConsumerDriver {
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    client.defineCommand(`kst_consumer_${name}`, { numberOfKeys: NUMBER_OF_KEYS[name], lua: SCRIPTS[name] });
  }
  const commands = client as unknown as Record<string, (...args: (string | number)[]) => Promise<Reply>>;
  const run = (name: ScriptName, ...args: (string | number)[]) => commands[`kst_consumer_${name}`]!(...args);
  const keys = (queue: string) => {
    const base = `${prefix}{qc:${tagSafe(queue)}}:`;
    return { consumers: `${base}consumers`, deliveries: `${base}deliveries` };
  };
  const connectionQueues = (connectionId: string) => `${prefix}qcc:${connectionId}`;
  const allQueues = `${prefix}qcq`;

  const stop = async (queue: string, connectionId: string, nowMs: number): Promise<HeldDelivery[]> => {
    const k = keys(queue);
    const [left, ...pairs] = (await run('stop', k.consumers, k.deliveries, connectionId, nowMs)) as [
      number,
      ...string[],
    ];
    await client.srem(connectionQueues(connectionId), queue);
    if (Number(left) === 0) await client.srem(allQueues, queue);
    const held: HeldDelivery[] = [];
    for (let i = 0; i < pairs.length; i += 2)
      held.push({ queue, connectionId, id: pairs[i]!, receipt: pairs[i + 1]! });
    return held.sort((a, b) => compareBytes(a.id, b.id));
  };

  return {
    async register(queue, connectionId, max, visibilityMs) {
      // Indexed first: a consumer is never left out of the indexes the cleanup and a close walk.
      await client.sadd(connectionQueues(connectionId), queue);
      await client.sadd(allQueues, queue);
      await run('register', keys(queue).consumers, connectionId, max, visibilityMs);
    },
    async claim(queue, slot, nowMs) {
      const k = keys(queue);
      const reply = (await run('claim', k.consumers, k.deliveries, slot, nowMs)) as [string, string] | null;
      if (!reply) return undefined;
      return { connectionId: reply[0], visibilityMs: Number(reply[1]) };
    },
    async bind(queue, slot, id, receipt, leaseEndsMs) {
      return (await run('bind', keys(queue).deliveries, slot, id, receipt, leaseEndsMs)) === 1;
    },
    async release(queue, key) {
      const reply = await run('release', keys(queue).deliveries, key);
      return typeof reply === 'string' ? reply : undefined;
    },
    async extend(queue, id, leaseEndsMs) {
      return (await run('extend', keys(queue).deliveries, id, leaseEndsMs)) === 1;
    },
    stop,
    async removeConnection(connectionId, nowMs) {
      const queues = await client.smembers(connectionQueues(connectionId));
      const held: HeldDelivery[] = [];
      for (const queue of queues.sort(compareBytes)) held.push(...(await stop(queue, connectionId, nowMs)));
      await client.del(connectionQueues(connectionId));
      return held;
    },
    async queues(limit) {
      return (await client.smembers(allQueues)).sort(compareBytes).slice(0, limit);
    },
    async list(queue, nowMs) {
      const k = keys(queue);
      const [consumers, deliveries] = (await run('list', k.consumers, k.deliveries)) as [string[], string[]];
      const inFlight = new Map<string, string[]>();
      for (let i = 0; i < deliveries.length; i += 2) {
        const d = JSON.parse(deliveries[i + 1]!) as { c: string; r: string; e: string };
        if (d.r === '' || Number(d.e) <= nowMs) continue;
        inFlight.set(d.c, [...(inFlight.get(d.c) ?? []), deliveries[i]!]);
      }
      const out: QueueConsumer[] = [];
      for (let i = 0; i < consumers.length; i += 2) {
        const connectionId = consumers[i]!;
        const c = JSON.parse(consumers[i + 1]!) as { m: string; v: string };
        out.push({
          connectionId,
          queue,
          max: Number(c.m),
          visibilityTimeout: Number(c.v) / 1000,
          inFlight: (inFlight.get(connectionId) ?? []).sort(compareBytes),
        });
      }
      return out.sort((a, b) => compareBytes(a.connectionId, b.connectionId));
    },
  };
}
