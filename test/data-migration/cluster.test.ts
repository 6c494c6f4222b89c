/**
 * The copy from a Redis Cluster (ElastiCache cluster mode): keys are listed on every primary and
 * read per node; a throwaway three-primary cluster of its own (ports apart from the conformance
 * suite's, which may run at the same time).
 */
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copy } from '../../lib/data-migration/copy.js';
import { createRedisSource } from '../../lib/data-migration/redis-source.js';
import { validate } from '../../lib/data-migration/validate.js';
import { createStorage } from '../../lib/storage/index.js';
import { populate } from './populate.js';
import { migrateUnavailable, Scratch } from './support.js';

process.env.REDIS_CLUSTER_BASE_PORT ??= '7411';
const { CLUSTER_URL, startRedisCluster, stopRedisCluster } = await import(
  '../support/servers/redis-cluster.js'
);

const unavailable = await migrateUnavailable();

describe.skipIf(unavailable !== undefined)('migrate copy from a Redis Cluster', () => {
  const scratch = new Scratch();
  let started = false;
  let skip: string | undefined;

  beforeAll(async () => {
    const result = await startRedisCluster();
    skip = result.unavailable;
    started = result.started;
    if (skip && process.env.CI) throw new Error(`a Redis Cluster is required under CI: ${skip}`);
  }, 120_000);
  afterAll(async () => {
    await scratch.cleanup();
    if (started) await stopRedisCluster();
  }, 60_000);

  it('copies every store from the primaries and validates equal', async (ctx) => {
    if (skip) {
      console.warn(`\n⚠ cluster migration test SKIPPED: ${skip}\n`);
      ctx.skip();
    }
    const prefix = `kst:mig:cluster:${Date.now()}:`;
    const storage = createStorage({
      backend: 'redis',
      keyPrefix: prefix,
      redis: { url: CLUSTER_URL, cluster: true },
    });
    try {
      await populate(storage, {
        kv: 3000,
        sessions: 300,
        tokens: 50,
        queues: 400,
        events: 300,
        audit: 200,
        connections: 40,
      });
    } finally {
      await storage.close();
    }
    const client = new Cluster([CLUSTER_URL], { redisOptions: { maxRetriesPerRequest: 1 } });
    try {
      await client.ping();
      const source = createRedisSource({
        client,
        prefix,
        name: `${CLUSTER_URL} (cluster), prefix ${prefix}`,
      });
      const target = await scratch.target(await scratch.schema());
      const report = await copy({ source, target, batchSize: 250 });
      expect(report.stores.kv?.read).toBe(3000);
      expect(report.stores.sessions?.read).toBe(300);
      expect(report.stores.queues?.read).toBe(400);
      expect(report.stores.connections?.read).toBe(40);
      const v = await validate({ source, target });
      for (const [store, s] of Object.entries(v.stores))
        expect(s.ok, `${store}: ${JSON.stringify(s)}`).toBe(true);
      expect(v.stores.kv?.sourceCount).toBe(3000);
      // Every key of the prefix goes: the cluster is this test's alone unless it was running already.
      for (const node of client.nodes('master')) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
          cursor = next;
          for (const key of keys) await node.unlink(key);
        } while (cursor !== '0');
      }
    } finally {
      client.disconnect();
    }
  }, 180_000);
});
