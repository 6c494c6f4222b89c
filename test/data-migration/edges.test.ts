/**
 * Edges of copy and validate that once went wrong: a key re-created while the copy removed it,
 * a move that died between its commit and its delete on the source, the hybrid's bookkeeping on
 * the target, identical audit entries whose target order is not time order, and a value that
 * differs only beyond a double's precision.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { copy } from '../../lib/data-migration/copy.js';
import type { RecordSource } from '../../lib/data-migration/source.js';
import { validate } from '../../lib/data-migration/validate.js';
import { quoteIdent } from '../../lib/storage/postgresql/sql.js';
import type { Storage } from '../../lib/storage/types.js';
import { adminSql, migrateUnavailable, pgStorage, redisStorage, Scratch } from './support.js';

const unavailable = await migrateUnavailable();

describe.skipIf(unavailable !== undefined)('migrate: edges', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup(), 60_000);

  async function setup() {
    const prefix = scratch.prefix();
    const schema = await scratch.schema();
    const redis = redisStorage(prefix);
    const pg = pgStorage(schema);
    const opened: Storage[] = [redis, pg];
    return {
      prefix,
      schema,
      redisStorage: redis,
      pg,
      source: scratch.source(prefix),
      target: await scratch.target(schema),
      close: () => Promise.all(opened.map((s) => s.close())),
    };
  }

  it('a key deleted and re-created while the copy removed it ends on the target', async () => {
    const { redisStorage, pg, source, target, close } = await setup();
    try {
      await redisStorage.kv.set('k', 'v1');
      let step = 0;
      const live: RecordSource = {
        ...source,
        async *batches(store, cursor, size) {
          for await (const batch of source.batches(store, cursor, size)) {
            if (store === 'kv' && step === 0) {
              step = 1;
              await redisStorage.kv.delete('k'); // after the copy read it
            }
            yield batch;
          }
        },
        async fetch(store, ids) {
          const answer = await source.fetch(store, ids);
          if (store === 'kv' && step === 1) {
            // Right after the second read answered "gone": set again, and its mirror lands.
            step = 2;
            await redisStorage.kv.set('k', 'v3');
            await pg.kv.set('k', 'v3');
          }
          return answer;
        },
      };
      await copy({ source: live, target, stores: ['kv'] });
      expect(step).toBe(2);
      expect(await pg.kv.get('k')).toBe('v3');
      expect((await validate({ source, target, stores: ['kv'] })).ok).toBe(true);
    } finally {
      await close();
    }
  });

  it('a move that died between its commit and the delete on the source finishes the delete first', async () => {
    const { redisStorage, pg, source, target, close } = await setup();
    try {
      for (let i = 0; i < 4; i++) await redisStorage.queues.send('jobs', { n: i });
      let fail = true;
      const crashing: RecordSource = {
        ...source,
        async remove(store, ids) {
          if (fail) {
            fail = false;
            throw new Error('died between commit and delete');
          }
          return source.remove!(store, ids);
        },
      };
      const options = { target, stores: ['queues' as const], move: true, batchSize: 2 };
      await expect(copy({ source: crashing, ...options })).rejects.toThrow('died between commit and delete');
      const resumed = await copy({ source, ...options });
      expect(resumed.resumed).toBe(true);
      expect(resumed.stores.queues?.moved).toBe(4);
      expect((await redisStorage.queues.stats('jobs')).depth).toBe(0);
      // Consumers on PostgreSQL take everything; moving again brings nothing back.
      const got = await pg.queues.receive('jobs', { max: 10 });
      expect(got.map((m) => (m.payload as { n: number }).n)).toEqual([0, 1, 2, 3]);
      for (const m of got) await pg.queues.ack('jobs', m.id, m.receipt);
      const again = await copy({ source, ...options });
      expect(again.stores.queues?.read).toBe(0);
      expect(await pg.queues.receive('jobs', { max: 10 })).toEqual([]);
    } finally {
      await close();
    }
  });

  it("the hybrid backend's own keys and journal queues are neither copied nor compared", async () => {
    const { redisStorage, pg, source, target, close } = await setup();
    try {
      await redisStorage.kv.set('a', 1);
      await redisStorage.kv.set('__kst_hybrid:journal-lock', 'redis side');
      const copied = await copy({ source, target, stores: ['kv', 'queues'] });
      expect(copied.stores.kv?.skipped).toMatchObject({ reserved: 1 });
      await pg.kv.set('__kst_hybrid:journal-lock', 'postgresql side', { ttl: 60 });
      await pg.queues.send('__kst_hybrid_journal', { t: 'kv', key: 'a' });
      const v = await validate({ source, target, stores: ['kv', 'queues'] });
      expect(v.ok).toBe(true);
      expect(v.stores.kv).toMatchObject({ sourceCount: 1, targetCount: 1 });
      expect(v.stores.queues).toMatchObject({ sourceCount: 0, targetCount: 0 });
    } finally {
      await close();
    }
  });

  it('identical audit entries pair by time, whatever order the target holds them in', async () => {
    const { prefix, schema, source, target, close } = await setup();
    try {
      const redis = scratch.redis();
      const t0 = Date.now() - 60_000;
      for (const t of [t0, t0 + 2000, t0 + 2500]) {
        await redis.xadd(
          `${prefix}{a}:log`,
          `${t}-0`,
          'i',
          'executor:c1',
          'a',
          'poll',
          'r',
          '',
          'c',
          '',
          'o',
          'ok',
          'd',
          '',
        );
      }
      const sql = await adminSql();
      try {
        // Two mirrored entries first, the older one appended by a copy after them.
        for (const t of [t0 + 2000, t0 + 2500, t0]) {
          await sql.query(
            `INSERT INTO ${quoteIdent(schema)}.audit_log (at, identity, action, resource, correlation_id, outcome, details)
             VALUES ($1, 'executor:c1', 'poll', NULL, NULL, 'ok', NULL)`,
            [new Date(t).toISOString()],
          );
        }
      } finally {
        await sql.close();
      }
      const v = await validate({ source, target, stores: ['audit'] });
      expect(v.stores.audit).toMatchObject({ matched: 3, ttlDrift: 0, missing: 0, extra: 0, ok: true });
    } finally {
      await close();
    }
  });

  it("a value that differs beyond a double's precision is a change, and the copy rewrites it", async () => {
    const { prefix, source, target, close } = await setup();
    try {
      const redis = scratch.redis();
      await redis.set(`${prefix}kv:id`, '{"snowflake":9007199254740992}');
      let raced = false;
      const live: RecordSource = {
        ...source,
        async *batches(store, cursor, size) {
          for await (const batch of source.batches(store, cursor, size)) {
            if (store === 'kv' && !raced) {
              raced = true;
              await redis.set(`${prefix}kv:id`, '{"snowflake":9007199254740993}');
            }
            yield batch;
          }
        },
      };
      const copied = await copy({ source: live, target, stores: ['kv'] });
      expect(copied.stores.kv?.rewritten).toBe(1);
      const sql = await adminSql();
      try {
        const [row] = await sql.query<{ value: string }>(
          `SELECT value FROM ${quoteIdent(target.schema)}.kv_store WHERE key = 'id'`,
        );
        expect(row?.value).toBe('{"snowflake":9007199254740993}');
        // Equal as doubles, not as data.
        await sql.query(
          `UPDATE ${quoteIdent(target.schema)}.kv_store SET value = '{"snowflake":9007199254740992}'`,
        );
      } finally {
        await sql.close();
      }
      const v = await validate({ source, target, stores: ['kv'] });
      expect(v.stores.kv).toMatchObject({ changed: 1, ok: false });
    } finally {
      await close();
    }
  });
});
