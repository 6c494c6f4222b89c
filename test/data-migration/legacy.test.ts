/**
 * The legacy import end to end: an upstream Kubently database written by the fixture generator
 * into the local Redis is copied into a fresh schema, checked by `validate`, and then read
 * through the storage's public API, the way the service reads it after the switch. Also: a
 * second run changes nothing, unreadable legacy items are skipped with a reason, and no token
 * plaintext reaches the target.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copy } from '../../lib/data-migration/copy.js';
import {
  API_KEY_SCOPES,
  createLegacySource,
  EXECUTOR_SCOPES,
  executorResources,
  notMigrated,
  parseIsoTime,
  SKIP_REASONS,
  UNRECOGNISED,
} from '../../lib/data-migration/legacy.js';
import {
  type LegacyManifest,
  pythonIso,
  pythonJson,
  writeLegacyFixture,
} from '../../lib/data-migration/legacy-fixture.js';
import type { PgTarget } from '../../lib/data-migration/pg-target.js';
import type { AuditRecord } from '../../lib/data-migration/records.js';
import type { RecordSource } from '../../lib/data-migration/source.js';
import { validate } from '../../lib/data-migration/validate.js';
import type { Storage } from '../../lib/storage/index.js';
import { quoteIdent } from '../../lib/storage/postgresql/sql.js';
import { adminSql, migrateUnavailable, pgStorage, REDIS_URL, Scratch } from './support.js';

const unavailable = await migrateUnavailable();

/** Generous: the machine is shared and noisy; times only need to be the same instant, not exact. */
const SLACK_MS = 5000;

describe.skipIf(unavailable !== undefined)(
  `legacy import${unavailable ? ` — SKIPPED: ${unavailable}` : ''}`,
  () => {
    const scratch = new Scratch();
    const storages: Storage[] = [];
    afterAll(async () => {
      await Promise.allSettled(storages.map((s) => s.close()));
      await scratch.cleanup();
    });

    const legacySource = (prefix: string, importedAtMs: number): RecordSource =>
      createLegacySource({
        client: scratch.redis(),
        name: `${REDIS_URL}, prefix ${prefix}`,
        prefix,
        now: () => importedAtMs,
      });
    const open = (schema: string): Storage => {
      const storage = pgStorage(schema);
      storages.push(storage);
      return storage;
    };
    /** The server-side expiry of a legacy key, as the import computes it. */
    const expiryOf = async (key: string): Promise<number> => {
      const redis = scratch.redis();
      const [[, time], [, pttl]] = (await redis.multi().time().pttl(key).exec()) as [
        [null, [string, string]],
        [null, number],
      ];
      return Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000) + pttl;
    };

    describe('a fixture database', () => {
      const importedAtMs = Date.now();
      let prefix: string;
      let schema: string;
      let manifest: LegacyManifest;
      let source: RecordSource;
      let target: PgTarget;
      let storage: Storage;
      let first: Awaited<ReturnType<typeof copy>>;

      beforeAll(async () => {
        prefix = scratch.prefix();
        manifest = await writeLegacyFixture(scratch.redis(), {
          prefix,
          sessions: 1500,
          clusters: 6,
          auditEntries: 1200,
          events: 800,
          seed: 7,
        });
        schema = await scratch.schema();
        target = await scratch.target(schema);
        source = legacySource(prefix, importedAtMs);
        await source.check();
        first = await copy({ source, target, batchSize: 300 });
        storage = open(schema);
      });

      it('copies every store, reports what stayed behind, and validate agrees', async () => {
        for (const store of ['kv', 'sessions', 'tokens', 'events', 'audit'] as const) {
          expect(first.stores[store]?.read, store).toBe(manifest.counts[store]);
          expect(first.stores[store]?.written, store).toBe(manifest.counts[store]);
        }
        const skipped = { ...first.stores.kv?.skipped, ...first.stores.sessions?.skipped };
        expect(skipped).toEqual(manifest.skipped);
        expect(skipped[notMigrated('metrics:*')]).toBe(2);
        expect(skipped[notMigrated(UNRECOGNISED)]).toBeUndefined();

        const report = await validate({ source, target });
        expect(report.ok).toBe(true);
        for (const store of ['kv', 'sessions', 'tokens', 'events', 'audit'] as const) {
          const v = report.stores[store]!;
          expect({ store, source: v.sourceCount, target: v.targetCount, matched: v.matched }).toEqual({
            store,
            source: manifest.counts[store],
            target: manifest.counts[store],
            matched: manifest.counts[store],
          });
          expect(v.missing + v.extra + v.changed + v.ttlDrift).toBe(0);
        }
      });

      it('answers the imported sessions through the sessions API, with their expiry', async () => {
        for (const s of manifest.liveSessions.slice(0, 25)) {
          const session = await storage.sessions.get(s.sessionId);
          expect(session, s.sessionId).toBeDefined();
          expect(session!.clusterId).toBe(s.clusterId);
          expect(session!.correlationId).toBe(s.correlationId);
          expect(typeof session!.data.command_count).toBe('number');
          expect(session!.data.cluster_id).toBeUndefined();
          const expected = await expiryOf(`${prefix}session:${s.sessionId}`);
          expect(Math.abs(Date.parse(session!.expiresAt) - expected)).toBeLessThan(SLACK_MS);
          const legacy = JSON.parse((await scratch.redis().get(`${prefix}session:${s.sessionId}`))!);
          expect(session!.createdAt).toBe(new Date(parseIsoTime(legacy.created_at)!).toISOString());
          expect(session!.lastActivity).toBe(new Date(parseIsoTime(legacy.last_activity)!).toISOString());
          expect(session!.userId).toBe(legacy.user_id);
          expect(session!.serviceIdentity).toBe(legacy.service_identity);
        }
        const cluster = manifest.liveSessions[0]!.clusterId;
        const byCluster = await storage.sessions.byCluster(cluster);
        expect(byCluster.length).toBe(manifest.liveSessions.filter((s) => s.clusterId === cluster).length);
        expect(await storage.sessions.isClusterActive(cluster)).toBe(true);
        expect(await storage.sessions.isClusterActive('no-such-cluster')).toBe(false);
        const correlated = manifest.liveSessions.find((s) => s.correlationId !== null)!;
        const byCorrelation = await storage.sessions.byCorrelation(correlated.correlationId!);
        expect(byCorrelation.map((s) => s.sessionId).sort()).toEqual(
          manifest.liveSessions
            .filter((s) => s.correlationId === correlated.correlationId)
            .map((s) => s.sessionId)
            .sort(),
        );
      });

      it('verifies imported executor tokens and API keys, and stores no plaintext', async () => {
        for (const [cluster, plaintext] of Object.entries(manifest.tokens.executor)) {
          const info = await storage.tokens.verify(plaintext);
          expect(info, cluster).toMatchObject({
            id: `legacy-executor:${cluster}`,
            identity: `executor:${cluster}`,
            resources: executorResources(cluster),
            expiresAt: null,
          });
          expect([...info!.scopes].sort()).toEqual([...EXECUTOR_SCOPES].sort());
          expect(Math.abs(Date.parse(info!.createdAt) - importedAtMs)).toBeLessThan(2);
        }
        for (const [plaintext, identity] of Object.entries(manifest.tokens.apiKeys)) {
          const info = await storage.tokens.verify(plaintext);
          expect(info?.identity).toBe(identity);
          expect(info?.resources).toEqual(['*']);
          expect([...info!.scopes].sort()).toEqual([...API_KEY_SCOPES].sort());
          expect(info!.scopes).not.toContain('admin');
        }
        expect(await storage.tokens.verify('not-a-legacy-token')).toBeUndefined();

        const sql = await adminSql();
        try {
          const rows = await sql.query<{ row: string }>(
            `SELECT t::text AS row FROM ${quoteIdent(schema)}.tokens t`,
          );
          expect(rows.length).toBe(manifest.counts.tokens);
          const text = rows.map((r) => r.row).join('\n');
          for (const plaintext of [
            ...Object.values(manifest.tokens.executor),
            ...Object.keys(manifest.tokens.apiKeys),
          ]) {
            expect(text.includes(plaintext)).toBe(false);
          }
        } finally {
          await sql.close();
        }
      });

      it('keeps capabilities, executor presence and command results as kv keys with their TTL', async () => {
        const redis = scratch.redis();
        for (const cluster of manifest.capabilities) {
          const key = `cluster:${cluster}:capabilities`;
          const stored = (await redis.get(`${prefix}${key}`))!;
          expect(await storage.kv.get(key)).toEqual(JSON.parse(stored));
          const ttl = (await storage.kv.ttl(key)) as number;
          const legacyTtl = (await redis.pttl(`${prefix}${key}`)) / 1000;
          expect(ttl).toBeGreaterThan(0);
          expect(Math.abs(ttl - legacyTtl)).toBeLessThan(SLACK_MS / 1000);
        }
        const activeKeys = await redis.keys(`${prefix}cluster:active:*`);
        expect(activeKeys.length).toBeGreaterThan(0);
        const values = new Set<unknown>();
        for (const key of activeKeys) {
          const name = key.slice(prefix.length);
          const value = await storage.kv.get(name);
          expect(value).toBe(await redis.get(key));
          values.add(value === '1' ? '1' : 'session id');
        }
        // Both forms the upstream service writes: "1" from an executor, a session id from a session.
        expect(values).toEqual(new Set(['1', 'session id']));
        const results = await redis.keys(`${prefix}result:*`);
        expect(results.length).toBe(3);
        for (const key of results) {
          expect(await storage.kv.get(key.slice(prefix.length))).toEqual(JSON.parse((await redis.get(key))!));
        }
        for (const key of await redis.keys(`${prefix}command:cluster:*`)) {
          expect(await storage.kv.get(key.slice(prefix.length))).toBe(await redis.get(key));
        }
      });

      it('answers session events oldest first, with the legacy times', async () => {
        const history = await storage.events.history('session:events', { limit: 1000 });
        expect(history.length).toBe(manifest.counts.events);
        const ids = history.map((e) => Number(e.id));
        expect(ids).toEqual(ids.map((_, i) => i + 1));
        const times = history.map((e) => Date.parse(e.publishedAt));
        expect(times).toEqual([...times].sort((a, b) => a - b));
        const redis = scratch.redis();
        const oldest = JSON.parse((await redis.lindex(`${prefix}session:events`, -1))!);
        const newest = JSON.parse((await redis.lindex(`${prefix}session:events`, 0))!);
        expect(history[0]!.message).toEqual(oldest);
        expect(history[history.length - 1]!.message).toEqual(newest);
        expect(times[0]).toBe(parseIsoTime(oldest.timestamp));
      });

      it('answers the audit entries through audit.query', async () => {
        const redis = scratch.redis();
        const legacy = (await redis.lrange(`${prefix}auth:audit`, 0, -1)).map((t) => JSON.parse(t));
        const tenant = legacy.filter((e) => e.data.service_identity === 'tenant:abc');
        const entries = await storage.audit.query({ identity: 'tenant:abc', limit: 1000, order: 'asc' });
        expect(entries.length).toBe(tenant.length);
        const command = entries.find((e) => e.action === 'command_executed' && e.outcome === 'error');
        expect(command?.resource).toEqual(expect.any(String));
        expect(command?.details?.outcome).toMatch(/^(failure|timeout)$/);
        const jwt = await storage.audit.query({ identity: 'unknown', limit: 1000 });
        expect(jwt.filter((e) => e.action === 'jwt_authenticated').length).toBe(5);
        // The oldest entries carry naive timestamps: read as UTC.
        const oldest = legacy[legacy.length - 1];
        expect(oldest.timestamp).not.toMatch(/\+00:00$/);
        const all = await storage.audit.query({ limit: 1000, order: 'asc' });
        expect(Date.parse(all[0]!.at)).toBe(parseIsoTime(`${oldest.timestamp}+00:00`));
      });

      it('resumes the audit read after any source id, across both lists', async () => {
        const read = async (cursor?: string) => {
          const out: AuditRecord[] = [];
          for await (const batch of source.batches('audit', cursor, 400)) out.push(...batch.records);
          return out;
        };
        const all = await read();
        expect(all.length).toBe(manifest.counts.audit);
        expect(all[0]!.sourceId).toBe('auth:audit:0000000001');
        expect(all[all.length - 1]!.sourceId).toBe('auth:audit:enhanced:0000000005');
        for (const at of [0, 399, 1000, 1199, 1202]) {
          const rest = await read(all[at]!.sourceId);
          expect(rest.map((r) => r.sourceId)).toEqual(all.slice(at + 1).map((r) => r.sourceId));
        }
        expect(await read(all[all.length - 1]!.sourceId)).toEqual([]);
      });

      it('changes nothing when run again', async () => {
        const sql = await adminSql();
        const snapshot = async () => {
          const out: Record<string, string[]> = {};
          for (const table of ['audit_log', 'events', 'event_channels', 'tokens', 'sessions', 'kv_store']) {
            const rows = await sql.query<{ row: string }>(
              `SELECT t::text AS row FROM ${quoteIdent(schema)}.${quoteIdent(table)} t ORDER BY 1`,
            );
            out[table] = rows.map((r) => r.row);
          }
          return out;
        };
        try {
          const before = await snapshot();
          // A new run, as the CLI starts it: a new source (same import time), the job's checkpoint.
          const again = await copy({ source: legacySource(prefix, importedAtMs), target, batchSize: 300 });
          expect(again.stores.audit?.written).toBe(0);
          const after = await snapshot();
          expect(after.audit_log).toEqual(before.audit_log);
          expect(after.events).toEqual(before.events);
          expect(after.event_channels).toEqual(before.event_channels);
          expect(after.tokens).toEqual(before.tokens);
          // Sessions and kv are written again with expiries read again: the same instant, within the slack.
          expect(after.sessions?.length).toBe(before.sessions?.length);
          expect(after.kv_store?.length).toBe(before.kv_store?.length);
          expect((await validate({ source, target })).ok).toBe(true);
        } finally {
          await sql.close();
        }
      });
    });

    it('skips unreadable legacy items with a reason and imports the rest', async () => {
      const prefix = scratch.prefix();
      const redis = scratch.redis();
      const manifest = await writeLegacyFixture(redis, {
        prefix,
        sessions: 20,
        clusters: 3,
        auditEntries: 10,
        seed: 3,
      });
      const [seconds] = await redis.time();
      const nowUs = Number(seconds) * 1_000_000;
      const session = (id: string, fields: Record<string, unknown>) =>
        pythonJson({
          session_id: id,
          cluster_id: manifest.clusters[0],
          user_id: 'anonymous',
          service_identity: 'direct',
          correlation_id: null,
          created_at: pythonIso(nowUs - 600_000_000),
          expires_at: pythonIso(nowUs + 3_000_000_000),
          last_activity: pythonIso(nowUs - 600_000_000),
          command_count: 0,
          ttl: 1800,
          ...fields,
        });
      await redis
        .multi()
        .set(`${prefix}session:corrupt`, '{"session_id": "corrupt", "cluster_id": ', 'EX', 3600)
        .set(`${prefix}session:no-cluster`, session('no-cluster', { cluster_id: null }), 'EX', 3600)
        // Written without TTL (by hand, or by an older release): lives until last_activity + ttl.
        .set(`${prefix}session:no-ttl`, session('no-ttl', { extra: { note: 'kept' } }))
        .set(`${prefix}session:from-index`, session('from-index', {}), 'EX', 3600)
        .sadd(`${prefix}correlation:corr-index:sessions`, 'from-index')
        .set(`${prefix}api:key:NOT-A-HASH`, 'tenant:broken')
        .set(`${prefix}some:unknown:key`, 'x')
        .hset(`${prefix}cluster:active:${manifest.clusters[2]}x`, { not: 'a string' })
        .lpush(`${prefix}auth:audit`, 'not json')
        .lpush(`${prefix}session:events`, 'not json either')
        .exec();

      const schema = await scratch.schema();
      const target = await scratch.target(schema);
      const source = legacySource(prefix, Date.now());
      const report = await copy({ source, target, batchSize: 40 });
      expect(report.interrupted).toBe(false);
      expect(report.stores.sessions?.skipped).toMatchObject({
        [SKIP_REASONS.unreadableSession]: 1,
        [SKIP_REASONS.noCluster]: 1,
      });
      expect(report.stores.sessions?.read).toBe(manifest.counts.sessions + 2);
      expect(report.stores.tokens?.skipped).toEqual({ [SKIP_REASONS.badApiKeyName]: 1 });
      expect(report.stores.kv?.skipped).toMatchObject({
        [notMigrated(UNRECOGNISED)]: 1,
        [SKIP_REASONS.wrongType]: 1,
      });
      expect(report.stores.audit?.skipped).toEqual({ [SKIP_REASONS.unreadableAudit]: 1 });
      expect(report.stores.audit?.read).toBe(manifest.counts.audit);
      expect(report.stores.events?.read).toBe(manifest.counts.events + 1);

      const storage = open(schema);
      const noTtl = await storage.sessions.get('no-ttl');
      expect(noTtl?.data).toEqual({ command_count: 0, extra: { note: 'kept' } });
      expect(Date.parse(noTtl!.expiresAt)).toBe(Math.floor(nowUs / 1000) - 600_000 + 1_800_000);
      expect((await storage.sessions.get('from-index'))?.correlationId).toBe('corr-index');
      expect(await storage.sessions.get('corrupt')).toBeUndefined();
      const history = await storage.events.history('session:events', { limit: 1000 });
      expect(history[history.length - 1]!.message).toBe('not json either');
      expect((await validate({ source, target })).ok).toBe(true);
      // Publishing goes on after the imported ids.
      const next = await storage.events.publish('session:events', { type: 'session.created' });
      expect(Number(next.id)).toBe(history.length + 1);
    });

    it('refuses a database that is not the upstream layout', async () => {
      const prefix = scratch.prefix();
      const redis = scratch.redis();
      await redis.set(`${prefix}auth:audit`, 'a string, not a list');
      await expect(legacySource(prefix, Date.now()).check()).rejects.toThrow(/not a list/);
    });
  },
);
