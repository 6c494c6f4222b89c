/**
 * The queue consumers' registry on Redis (driver.ts, `ConsumerDriver`). One hash tag per queue
 * (`<prefix>{qc:<queue>}:`), so each script touches one slot and runs on Redis Cluster:
 * `consumers` (hash: connection id → {m max, v visibility ms, l last claim ms}) and `deliveries`
 * (hash: message or slot id → {c connection, r receipt ('' for a slot), e lease end ms}). A claim
 * is one script: it drops ended leases, counts each consumer's deliveries and reserves a slot on
 * the least-loaded one with room, so concurrent claims never pass a consumer's `max`. Plain index
 * keys (keys.ts, `consumerKeys`) are kept beside the scripts, not in them (other slots).
 *
 * The scripts are lua/consumer*.lua (scripts.ts types them). The fields are the caller's strings
 * inside cjson, numbers compared with tonumber: no JSON of the caller's passes through Lua.
 */
import { type ConsumerDriver, compareBytes } from '../driver.js';
import type { HeldDelivery, QueueConsumer } from '../types.js';
import type { RedisClient } from './client.js';
import { consumerKeys } from './keys.js';
import type { ScriptCaller } from './scripts.js';

export function redisConsumers(client: RedisClient, run: ScriptCaller, prefix: string): ConsumerDriver {
  const { queue: keys, connectionQueues, allQueues, allConnections } = consumerKeys(prefix);

  /**
   * Drops the connection from `qcco` once it has no queue left. A register adds its queue before
   * the connection, so checking again after the ZREM puts back one that registered meanwhile.
   */
  const forgetIfIdle = async (connectionId: string) => {
    if ((await client.scard(connectionQueues(connectionId))) > 0) return;
    await client.zrem(allConnections, connectionId);
    if ((await client.scard(connectionQueues(connectionId))) > 0)
      await client.zadd(allConnections, 0, connectionId);
  };

  const stop = async (queue: string, connectionId: string, nowMs: number): Promise<HeldDelivery[]> => {
    const k = keys(queue);
    const stopped = await run('consumerStop', [k.consumers, k.deliveries], [connectionId, nowMs]);
    await client.srem(connectionQueues(connectionId), queue);
    if (stopped.consumersLeft === 0) await client.srem(allQueues, queue);
    await forgetIfIdle(connectionId);
    return stopped.held
      .map(({ id, receipt }): HeldDelivery => ({ queue, connectionId, id, receipt }))
      .sort((a, b) => compareBytes(a.id, b.id));
  };

  return {
    async register(queue, connectionId, max, visibilityMs) {
      // Indexed first: a consumer is never left out of the indexes the cleanup and a close walk.
      // `qcco` again last: a concurrent stop's forgetIfIdle may have dropped it in between.
      await client.zadd(allConnections, 0, connectionId);
      await client.sadd(connectionQueues(connectionId), queue);
      await client.sadd(allQueues, queue);
      await run('consumerRegister', [keys(queue).consumers], [connectionId, max, visibilityMs]);
      await client.zadd(allConnections, 0, connectionId);
    },
    async claim(queue, slot, nowMs) {
      const k = keys(queue);
      return run('consumerClaim', [k.consumers, k.deliveries], [slot, nowMs]);
    },
    async bind(queue, slot, id, receipt, leaseEndsMs) {
      return run('consumerBind', [keys(queue).deliveries], [slot, id, receipt, leaseEndsMs]);
    },
    async release(queue, key) {
      return run('consumerRelease', [keys(queue).deliveries], [key]);
    },
    async extend(queue, id, leaseEndsMs) {
      return run('consumerExtend', [keys(queue).deliveries], [id, leaseEndsMs]);
    },
    stop,
    async removeConnection(connectionId, nowMs) {
      const queues = await client.smembers(connectionQueues(connectionId));
      const held: HeldDelivery[] = [];
      for (const queue of queues.sort(compareBytes)) held.push(...(await stop(queue, connectionId, nowMs)));
      await client.del(connectionQueues(connectionId));
      await forgetIfIdle(connectionId);
      return held;
    },
    async queues(limit) {
      return (await client.smembers(allQueues)).sort(compareBytes).slice(0, limit);
    },
    async connections(after, limit) {
      return client.zrangebylex(allConnections, after === '' ? '-' : `(${after}`, '+', 'LIMIT', 0, limit);
    },
    async list(queue, nowMs) {
      const k = keys(queue);
      const { consumers, deliveries } = await run('consumerList', [k.consumers, k.deliveries], []);
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
