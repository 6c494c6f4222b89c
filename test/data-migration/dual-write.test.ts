/**
 * The copy while the service keeps writing under dual-write (the `sync` transition): a hybrid
 * storage routes everything to Redis and mirrors kv, sessions, tokens and audit entries to
 * PostgreSQL, writers overwrite, delete, keep alive, end and revoke the very items the copy is
 * reading, and afterwards validate finds PostgreSQL equal to Redis — whatever the order in which
 * a mirror and the copy's older read reached it. Then `copy --move` of queues, after their
 * routing moved: every message is delivered from the target, none is left on the source.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { copy } from '../../lib/data-migration/copy.js';
import type { RecordSource } from '../../lib/data-migration/source.js';
import { validate } from '../../lib/data-migration/validate.js';
import { createStorage, hybridControl } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { everyType } from '../support/backends.js';
import { inParallel } from './populate.js';
import { DATABASE_URL, migrateUnavailable, pgStorage, REDIS_URL, redisStorage, Scratch } from './support.js';

const unavailable = await migrateUnavailable();

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe.skipIf(unavailable !== undefined)('migrate copy under dual-write', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup(), 120_000);

  it('ends with the target equal to the source while writes continue', async () => {
    const prefix = scratch.prefix();
    const schema = await scratch.schema();
    // Before dual-write: data only Redis has.
    const before = redisStorage(prefix);
    const sessionIds: string[] = [];
    const tokenIds: string[] = [];
    try {
      for (let i = 0; i < 6000; i += 1000) {
        await before.kv.setMany(
          range(1000).map((j) => ({
            key: `k${i + j}`,
            value: { v: 0, i: i + j },
            ttl: (i + j) % 2 ? 3600 : undefined,
          })),
        );
      }
      await inParallel(range(600), 16, async (i) => {
        sessionIds.push(
          (await before.sessions.create({ clusterId: `c${i % 9}`, data: { i }, ttl: 3600 })).sessionId,
        );
      });
      await inParallel(range(200), 16, async (i) => {
        tokenIds.push((await before.tokens.issue({ identity: `t${i}`, scopes: ['kv:read'] })).id);
      });
      await inParallel(range(400), 16, async (i) => {
        await before.audit.append({ identity: `a${i % 7}`, action: 'before', resource: `r${i}` });
      });
    } finally {
      await before.close();
    }

    // The deployment now dual-writes: every type on Redis, mirrored to PostgreSQL. Its first
    // entries are stamped after `since`'s millisecond (the copy reconciles that one by content,
    // which the mirror of an entry written in it, still on its way, would race).
    const since = Date.now();
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(since), { interval: 1 });
    const hybrid: Storage = createStorage(
      {
        backend: 'hybrid',
        keyPrefix: prefix,
        redis: { url: REDIS_URL },
        postgresql: { url: DATABASE_URL, schema, listen: false },
        hybrid: { routing: everyType('redis'), fallback: { enabled: false } },
        migration: { dualWrite: true },
      },
      // A mirror slower than its deadline counts as an outage and is journaled (replayed later,
      // an audit entry possibly twice): the hybrid's own story, told in test/hybrid. Here every
      // mirror gets the time it needs, so what is compared is the copy's doing.
      { hybrid: { operationTimeoutMs: 30_000 } },
    );
    let writing = true;
    const counts = { kv: 0, deletes: 0, sessions: 0, ended: 0, tokens: 0, revoked: 0, audit: 0 };
    const writer = async (w: number) => {
      let n = 0;
      while (writing) {
        n++;
        const i = (n * 7919 + w * 104_729) % 6000;
        if (n % 10 === 0) {
          await hybrid.kv.delete(`k${i}`);
          counts.deletes++;
        } else {
          await hybrid.kv.set(`k${i}`, { v: n, w, i }, n % 3 === 0 ? { ttl: 600 + (n % 50) } : {});
          counts.kv++;
        }
        if (n % 4 === 0) {
          const id = sessionIds[(n + w) % sessionIds.length]!;
          if (n % 20 === 0) {
            await hybrid.sessions.end(id);
            counts.ended++;
          } else await hybrid.sessions.keepAlive(id, 1800 + (n % 100));
        }
        if (n % 6 === 0) {
          sessionIds.push(
            (await hybrid.sessions.create({ clusterId: `c${n % 9}`, data: { n, w }, ttl: 3600 })).sessionId,
          );
          counts.sessions++;
        }
        if (n % 15 === 0) {
          if (n % 30 === 0) {
            await hybrid.tokens.revoke(tokenIds[(n / 30 + w) % tokenIds.length]!);
            counts.revoked++;
          } else {
            tokenIds.push((await hybrid.tokens.issue({ identity: `w${w}-${n}`, scopes: ['kv:write'] })).id);
            counts.tokens++;
          }
        }
        if (n % 5 === 0) {
          await hybrid.audit.append({ identity: `a${w}`, action: 'during', resource: `r${n}` });
          counts.audit++;
        }
      }
    };
    const writers = Promise.all(range(4).map(writer));
    try {
      const source = scratch.source(prefix);
      const target = await scratch.target(schema);
      // Small batches: many reads and writes for the writers to land between.
      const report = await copy({
        source,
        target,
        batchSize: 100,
        stores: ['kv', 'sessions', 'tokens', 'audit'],
        dualWriteSinceMs: since,
      });
      // Keep writing a moment after the copy: mirrors of items it already wrote must win too.
      await new Promise((resolve) => setTimeout(resolve, 500));
      writing = false;
      await writers;
      await hybridControl(hybrid)!.flush();
      expect(hybridControl(hybrid)!.stats().sync.failures).toBe(0);
      const rewritten = Object.values(report.stores).reduce((n, r) => n + r.rewritten + r.removed, 0);
      console.log(
        `writes during the copy: ${JSON.stringify(counts)}; the copy rewrote or removed ${rewritten}`,
      );
      expect(counts.kv).toBeGreaterThan(500);

      const v = await validate({ source, target, stores: ['kv', 'sessions', 'tokens', 'audit'] });
      for (const [store, s] of Object.entries(v.stores)) {
        expect(s.ok, `${store}: ${JSON.stringify(s)}`).toBe(true);
      }
      // Audit: the 400 entries from before were copied, those written since were mirrored, none twice.
      expect(v.stores.audit?.sourceCount).toBe(400 + counts.audit);
      expect(v.stores.audit?.targetCount).toBe(400 + counts.audit);
    } finally {
      writing = false;
      await writers.catch(() => {});
      await hybrid.close();
    }
  }, 300_000);

  it("a write whose mirror lands before the copy's older read is not undone: the copy reads its batch again", async () => {
    for (const verify of [true, false]) {
      const prefix = scratch.prefix();
      const schema = await scratch.schema();
      const redis = redisStorage(prefix);
      const pg = pgStorage(schema);
      try {
        await redis.kv.setMany(range(50).map((i) => ({ key: `k${i}`, value: 'old' })));
        const inner = scratch.source(prefix);
        let raced = false;
        // Between the copy's read of the batch and its write: a writer changes k1 and deletes k2,
        // and the dual-write mirror applies both to PostgreSQL at once.
        const racing: RecordSource = {
          ...inner,
          async *batches(store, cursor, size) {
            for await (const batch of inner.batches(store, cursor, size)) {
              if (store === 'kv' && !raced && batch.records.length > 0) {
                raced = true;
                await redis.kv.set('k1', 'new');
                await pg.kv.set('k1', 'new');
                await redis.kv.delete('k2');
                await pg.kv.delete('k2');
              }
              yield batch;
            }
          },
        };
        const target = await scratch.target(schema);
        const report = await copy({ source: racing, target, stores: ['kv'], verify });
        expect(raced).toBe(true);
        const v = await validate({ source: inner, target, stores: ['kv'] });
        if (verify) {
          expect(report.stores.kv).toMatchObject({ rewritten: 1, removed: 1 });
          expect(v.ok).toBe(true);
          expect(await pg.kv.get('k1')).toBe('new');
          expect(await pg.kv.exists('k2')).toBe(false);
        } else {
          // Without the second read the copy's older values win: what validate is there to catch.
          expect(v.stores.kv).toMatchObject({ changed: 1, extra: 1, ok: false });
          expect(await pg.kv.get('k1')).toBe('old');
        }
      } finally {
        await Promise.all([redis.close(), pg.close()]);
      }
    }
  });

  it('an entry a writer that did not mirror stamped with the very millisecond dual-write began is copied, a mirrored one not twice', async () => {
    const prefix = scratch.prefix();
    const schema = await scratch.schema();
    const redis = redisStorage(prefix);
    const pg = pgStorage(schema);
    try {
      for (let i = 0; i < 5; i++)
        await redis.audit.append({ identity: 'w', action: 'before', resource: `r${i}` });
      // The interleaving, made exact: dual-write begins in the millisecond of the last entry
      // written without a mirror (a writer finishing as the rollout ends, a clock a little ahead).
      const [last] = await redis.audit.query({ limit: 1, order: 'desc' });
      const since = Date.parse(last!.at);
      // And a writer that did mirror, around the same moment: its entry is on both sides.
      await redis.audit.append({ identity: 'w', action: 'mirrored', resource: 'm' });
      await pg.audit.append({ identity: 'w', action: 'mirrored', resource: 'm' });

      const source = scratch.source(prefix);
      const target = await scratch.target(schema);
      await copy({ source, target, stores: ['audit'], dualWriteSinceMs: since });
      const v = await validate({ source, target, stores: ['audit'] });
      expect(v.stores.audit, JSON.stringify(v.stores.audit)).toMatchObject({
        sourceCount: 6,
        targetCount: 6,
        missing: 0,
        extra: 0,
      });
    } finally {
      await Promise.all([redis.close(), pg.close()]);
    }
  });

  it('copy --move brings a queue over once its routing moved: each message delivered once, from the target', async () => {
    const prefix = scratch.prefix();
    const schema = await scratch.schema();
    const redis = redisStorage(prefix);
    const pg = pgStorage(schema);
    try {
      for (let i = 0; i < 500; i++)
        await redis.queues.send('moving', { i }, { dedupId: i % 50 === 0 ? `d${i}` : undefined });
      // Routing moved: new messages arrive on the target meanwhile.
      await pg.queues.send('moving', { i: 'new' });
      const source = scratch.source(prefix);
      const target = await scratch.target(schema);
      const report = await copy({ source, target, stores: ['queues', 'dedup'], move: true, batchSize: 64 });
      expect(report.stores.queues?.moved).toBe(500);
      expect(report.stores.dedup?.moved).toBe(10);
      expect(await redis.queues.stats('moving')).toMatchObject({ depth: 0, inFlight: 0, dead: 0 });
      // Moved messages queue behind what the target already held, in their own order; each once.
      const seen: unknown[] = [];
      for (;;) {
        const batch = await pg.queues.receive('moving', { max: 100 });
        if (batch.length === 0) break;
        for (const m of batch) {
          seen.push((m.payload as { i: unknown }).i);
          await pg.queues.ack('moving', m.id, m.receipt);
        }
      }
      expect(seen).toEqual(['new', ...range(500)]);
      // The dedup window came along: a retried send is still recognised.
      expect((await pg.queues.send('moving', { i: 'again' }, { dedupId: 'd50' })).duplicate).toBe(true);
      // Moving again finds nothing left to move.
      const again = await copy({ source, target, stores: ['queues', 'dedup'], move: true });
      expect(again.stores.queues?.read).toBe(0);
    } finally {
      await Promise.all([redis.close(), pg.close()]);
    }
  }, 120_000);
});
