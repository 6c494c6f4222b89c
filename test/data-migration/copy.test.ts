/**
 * `copy` and `validate` from this project's Redis layout into PostgreSQL, on the real servers:
 * 100,000 items across every store copied and validated, then read back through the PostgreSQL
 * backend's public API; an interrupted copy resumed; validate catching what differs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copy } from '../../lib/data-migration/copy.js';
import type { PgTarget } from '../../lib/data-migration/pg-target.js';
import type { RecordSource } from '../../lib/data-migration/source.js';
import { validate } from '../../lib/data-migration/validate.js';
import { quoteIdent } from '../../lib/storage/postgresql/sql.js';
import type { Storage } from '../../lib/storage/types.js';
import { type Populated, populate } from './populate.js';
import {
  adminSql,
  migrateUnavailable,
  pgStorage as pgStorageOn,
  redisStorage as redisStorageOn,
  Scratch,
} from './support.js';

const unavailable = await migrateUnavailable();

const COUNTS = {
  kv: 70_000,
  sessions: 10_000,
  tokens: 2_000,
  queues: 10_000,
  events: 5_000,
  audit: 3_000,
  connections: 500,
};

/** Dead letters after one failed delivery; history long enough to keep every event. */
const LIMITS = { queues: { maxAttempts: 1 }, events: { maxHistory: 10_000 } };
const redisStorage = (prefix: string) => redisStorageOn(prefix, LIMITS);
const pgStorage = (schema: string) => pgStorageOn(schema, LIMITS);

describe.skipIf(unavailable !== undefined)('migrate copy: Redis layout → PostgreSQL', () => {
  const scratch = new Scratch();
  let prefix: string;
  let populated: Populated;
  let source: RecordSource;

  beforeAll(async () => {
    prefix = scratch.prefix();
    const storage = redisStorage(prefix);
    try {
      populated = await populate(storage, COUNTS);
    } finally {
      await storage.close();
    }
    source = scratch.source(prefix);
  }, 300_000);
  afterAll(() => scratch.cleanup(), 120_000);

  it('copies 100,000 items across every store, and validate finds them all equal', async () => {
    const schema = await scratch.schema();
    const target = await scratch.target(schema);
    const report = await copy({ source, target });
    const read = Object.values(report.stores).reduce((n, r) => n + r.read, 0);
    expect(report.interrupted).toBe(false);
    expect(report.stores.kv?.read).toBe(COUNTS.kv);
    expect(report.stores.sessions?.read).toBe(COUNTS.sessions);
    expect(report.stores.tokens?.read).toBe(COUNTS.tokens);
    expect(report.stores.queues?.read).toBe(COUNTS.queues);
    expect(report.stores.events?.read).toBe(COUNTS.events);
    expect(report.stores.audit?.read).toBe(COUNTS.audit);
    expect(report.stores.connections?.read).toBe(COUNTS.connections);
    expect(read).toBeGreaterThanOrEqual(100_000);
    console.log(`copied ${read} items in ${report.durationMs} ms (${Math.round(report.rate)} items/s)`);

    const v = await validate({ source, target });
    for (const [store, s] of Object.entries(v.stores)) {
      expect({ store, ...s, examples: undefined }).toMatchObject({
        store,
        missing: 0,
        extra: 0,
        changed: 0,
        ttlDrift: 0,
        ok: true,
      });
      expect(s.targetCount).toBe(s.sourceCount);
    }
    expect(v.ok).toBe(true);
    expect(v.stores.kv?.checked).toBe(COUNTS.kv);

    // Read back through the PostgreSQL backend: what an agent sees after switching.
    const redis = redisStorage(prefix);
    const pg = pgStorage(schema);
    try {
      for (const key of [
        'key:0000000',
        'key:0000001',
        'key:0000002',
        'key:0000003',
        'key:0000004',
        'key:0069999',
      ]) {
        expect(await pg.kv.get(key)).toEqual(await redis.kv.get(key));
        const [a, b] = [await redis.kv.ttl(key), await pg.kv.ttl(key)];
        if (a === null) expect(b).toBeNull();
        else expect(Math.abs((a ?? 0) - (b ?? 0))).toBeLessThan(5);
      }
      for (const cluster of ['cluster-0', 'cluster-16']) {
        const [a, b] = [await redis.sessions.byCluster(cluster), await pg.sessions.byCluster(cluster)];
        expect(b.map((s) => s.sessionId)).toEqual(a.map((s) => s.sessionId));
        expect(b[0]).toEqual(a[0]);
        expect(await pg.sessions.isClusterActive(cluster)).toBe(true);
      }
      expect(await pg.sessions.activeClusters()).toEqual(await redis.sessions.activeClusters());
      const byCorr = await pg.sessions.byCorrelation('corr-1');
      expect(byCorr.map((s) => s.sessionId)).toEqual(
        (await redis.sessions.byCorrelation('corr-1')).map((s) => s.sessionId),
      );
      for (const { token, identity } of populated.secrets) {
        expect((await pg.tokens.verify(token))?.identity).toBe(identity);
      }
      expect((await pg.tokens.list()).length).toBe(COUNTS.tokens);
      // FIFO survives: `jobs` was sent one message at a time.
      const stats = await pg.queues.stats('jobs');
      expect(stats).toEqual(await redis.queues.stats('jobs'));
      const received = await pg.queues.receive('jobs', { max: 100 });
      const seqs = received.map((m) => (m.payload as { seq: number }).seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      // Dead letters that died in the same millisecond may list in either order.
      const deadIds = async (s: Storage) => (await s.queues.deadLetters('jobs')).map((m) => m.id).sort();
      expect(await deadIds(pg)).toEqual(await deadIds(redis));
      expect((await deadIds(pg)).length).toBe(3);
      for (const id of ['conn-000000', 'conn-000001', 'conn-000499']) {
        expect(await pg.connections.get(id)).toEqual(await redis.connections.get(id));
      }
      const subscribers = async (s: Storage) =>
        (await s.connections.subscribers('channel-1', { limit: 1000 })).connectionIds;
      expect(await subscribers(pg)).toEqual(await subscribers(redis));
      for (const channel of ['events:a', 'cluster-1:status']) {
        expect(await pg.events.history(channel, { limit: 1000 })).toEqual(
          await redis.events.history(channel, { limit: 1000 }),
        );
        // Ids continue after the copied ones: subscribers' cursors stay valid.
        const last = (await redis.events.history(channel, { limit: 1000 })).at(-1)!.id;
        const next = await pg.events.publish(channel, { after: 'copy' });
        expect(next.id > last).toBe(true);
      }
      const [auditA, auditB] = [
        await redis.audit.query({ identity: 'svc-3', limit: 1000 }),
        await pg.audit.query({ identity: 'svc-3', limit: 1000 }),
      ];
      expect(auditB.map(({ id: _id, ...rest }) => rest)).toEqual(auditA.map(({ id: _id, ...rest }) => rest));
    } finally {
      await Promise.all([redis.close(), pg.close()]);
    }

    // Copying again changes nothing and appends nothing.
    const again = await copy({ source, target });
    expect(again.stores.audit?.written).toBe(0);
    expect(await target.count('audit')).toBe(COUNTS.audit);
    expect(await target.count('kv')).toBe(COUNTS.kv);
    expect((await validate({ source, target, sample: 500 })).ok).toBe(true);
  }, 300_000);

  it('an interrupted copy resumes from its checkpoint: the same result, nothing twice', async () => {
    const schema = await scratch.schema();
    const target = await scratch.target(schema);
    const controller = new AbortController();
    let batches = 0;
    const first = await copy({
      source,
      target,
      batchSize: 500,
      signal: controller.signal,
      onProgress: (p) => {
        // Stop in the middle of the audit store, the one that must never be appended twice.
        if (p.phase === 'batch' && p.store === 'audit' && ++batches === 3) controller.abort();
      },
    });
    expect(first.interrupted).toBe(true);
    expect(first.stores.audit?.written).toBe(1500);
    expect(await target.count('audit')).toBe(1500);
    const checkpoint = await target.loadCheckpoint(first.job);
    expect(checkpoint?.finishedAt).toBeNull();

    const second = await copy({ source, target, batchSize: 500 });
    expect(second.resumed).toBe(true);
    expect(second.interrupted).toBe(false);
    // Stores finished before the interruption are not read again.
    expect(second.stores.kv?.written).toBe(0);
    expect(second.stores.audit?.written).toBe(COUNTS.audit - 1500);
    expect(await target.count('audit')).toBe(COUNTS.audit);
    expect(await target.count('events')).toBe(COUNTS.events);
    expect((await validate({ source, target })).ok).toBe(true);
  }, 300_000);

  it('validate catches a changed value, a missing key and a TTL drift, and names them', async () => {
    const schema = await scratch.schema();
    const target = await scratch.target(schema);
    await copy({ source, target, stores: ['kv', 'sessions', 'audit'] });
    expect((await validate({ source, target, stores: ['kv', 'sessions', 'audit'] })).ok).toBe(true);

    const sql = await adminSql();
    const t = (table: string) => `${quoteIdent(schema)}.${quoteIdent(table)}`;
    try {
      await sql.query(`UPDATE ${t('kv_store')} SET value = '"tampered"' WHERE key = 'key:0000005'`);
      await sql.query(`DELETE FROM ${t('kv_store')} WHERE key = 'key:0000010'`);
      await sql.query(
        `UPDATE ${t('kv_store')} SET expires_at = expires_at + interval '1 hour' WHERE key = 'key:0000006'`,
      );
      await sql.query(
        `UPDATE ${t('kv_store')} SET expires_at = now() + interval '1 day' WHERE key = 'key:0000007'`,
      );
      const [session] = await sql.query<{ session_id: string }>(
        `SELECT session_id FROM ${t('sessions')} LIMIT 1`,
      );
      await sql.query(`UPDATE ${t('sessions')} SET data = '{"changed":true}' WHERE session_id = $1`, [
        session!.session_id,
      ]);
      await sql.query(`DELETE FROM ${t('audit_log')} WHERE id = (SELECT max(id) FROM ${t('audit_log')})`);
      await sql.query(`INSERT INTO ${t('kv_store')} (key, value) VALUES ('not-on-the-source', '1')`);
    } finally {
      await sql.close();
    }

    const v = await validate({ source, target, stores: ['kv', 'sessions', 'audit'] });
    expect(v.ok).toBe(false);
    const kv = v.stores.kv!;
    expect(kv).toMatchObject({ changed: 1, missing: 1, ttlDrift: 2, extra: 1, ok: false });
    expect(kv.examples.changed).toEqual([{ id: 'key:0000005', field: 'value' }]);
    expect(kv.examples.missing).toEqual([{ id: 'key:0000010' }]);
    expect(kv.examples.ttlDrift.map((m) => m.id).sort()).toEqual(['key:0000006', 'key:0000007']);
    expect(kv.examples.ttlDrift.find((m) => m.id === 'key:0000006')?.driftMs).toBeGreaterThan(3_500_000);
    expect(kv.examples.extra).toEqual([{ id: 'not-on-the-source' }]);
    expect(v.stores.sessions).toMatchObject({ changed: 1, ok: false });
    expect(v.stores.sessions?.examples.changed[0]).toMatchObject({ field: 'data' });
    expect(v.stores.audit).toMatchObject({ missing: 1, ok: false });

    // A sample sees a changed key it draws, and counts stay exact.
    const sampled = await validate({ source, target, stores: ['kv'], sample: COUNTS.kv });
    expect(sampled.stores.kv).toMatchObject({
      sourceCount: COUNTS.kv,
      checked: COUNTS.kv,
      changed: 1,
      missing: 1,
    });

    // A wider tolerance forgives the drift, never the change.
    const tolerant = await validate({ source, target, stores: ['kv'], toleranceMs: 2 * 86_400_000 });
    expect(tolerant.stores.kv).toMatchObject({ changed: 1, missing: 1, ttlDrift: 1 });
  }, 300_000);

  it('a dry run reads and counts everything and writes nothing', async () => {
    const schema = await scratch.schema();
    const target: PgTarget = await scratch.target(schema);
    const report = await copy({ source, target, dryRun: true, stores: ['sessions', 'tokens'] });
    expect(report.dryRun).toBe(true);
    expect(report.stores.sessions?.read).toBe(COUNTS.sessions);
    expect(report.stores.sessions?.written).toBe(0);
    expect(await target.count('sessions')).toBe(0);
    expect(await target.loadCheckpoint(report.job)).toBeUndefined();
  });
});
