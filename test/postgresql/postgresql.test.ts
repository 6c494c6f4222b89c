/**
 * PostgreSQL-specific guarantees the conformance suite cannot see: statements per operation,
 * many receivers on one queue, events larger than a NOTIFY payload, what the sweep deletes,
 * names that look like SQL, and the errors of an unmigrated schema or a missing database.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { resolveConfig, type StorageConfigInput } from '../../lib/config/index.js';
import { BackendUnavailableError, ConfigError, ConflictError } from '../../lib/errors.js';
import { hashToken } from '../../lib/storage/facade.js';
import { createStorage, type Storage } from '../../lib/storage/index.js';
import {
  applySchemaMigrations,
  loadSchemaMigrations,
} from '../../lib/storage/postgresql/schema-migrations.js';
import { createSql, quoteIdent, type Row, type Sql } from '../../lib/storage/postgresql/sql.js';
import type { Json, PublishedEvent } from '../../lib/storage/types.js';
import { postgresBackend, testDatabaseUrl } from '../support/backends.js';
import { failure, name, sleep } from '../support/helpers.js';

const URL = testDatabaseUrl();
const unavailable = await postgresBackend({ name: 'postgresql-pg', driver: 'pg' }).available();
if (unavailable && process.env.CI) throw new Error(`PostgreSQL is required under CI: ${unavailable}`);
if (unavailable)
  console.warn(`\n⚠ test/postgresql SKIPPED: ${unavailable} (start PostgreSQL or set DATABASE_URL)\n`);

describe.skipIf(unavailable !== undefined)(
  `postgresql backend specifics${unavailable ? ` — SKIPPED: ${unavailable}` : ''}`,
  () => {
    const run = randomBytes(3).toString('hex');
    const schemas: string[] = [];
    const storages: Storage[] = [];
    let admin: Sql;

    const pgConfig = (schema: string, overrides: StorageConfigInput['postgresql'] = {}) =>
      resolveConfig({ backend: 'postgresql', postgresql: { url: URL, schema, ...overrides } }).postgresql;
    /** A migrated schema of its own. */
    async function freshSchema(): Promise<string> {
      const schema = `kst_pgt_${run}_${schemas.length}`;
      schemas.push(schema);
      await applySchemaMigrations(admin, { schema });
      return schema;
    }
    function storageOn(schema: string, overrides: StorageConfigInput = {}, sql?: Sql): Storage {
      const storage = createStorage(
        { ...overrides, backend: 'postgresql', postgresql: { url: URL, schema, ...overrides.postgresql } },
        { postgresql: { sql } },
      );
      storages.push(storage);
      return storage;
    }

    /** An Sql that records every statement sent through it. */
    function counting(sql: Sql): { sql: Sql; sent: string[] } {
      const sent: string[] = [];
      return {
        sent,
        sql: {
          ...sql,
          driver: sql.driver,
          query: (text, params) => {
            sent.push(text.replace(/\s+/g, ' ').trim());
            return sql.query(text, params);
          },
          transaction: (fn) => {
            sent.push('BEGIN');
            return sql.transaction(fn);
          },
          close: () => sql.close(),
        },
      };
    }

    beforeAll(async () => {
      admin = await createSql(pgConfig('public', { listen: false }));
    });
    // Each test's storages close when it ends: their pools would otherwise hold idle
    // connections until the file ends, past a default server's 100.
    afterEach(async () => {
      await Promise.all(storages.splice(0).map((s) => s.close().catch(() => {})));
    });
    afterAll(async () => {
      for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
      await admin.close();
    });

    describe('statements', () => {
      it('get, set, exists, isClusterActive, send, receive, ack and publish are one statement each', async () => {
        const schema = await freshSchema();
        const raw = await createSql(pgConfig(schema, { listen: false }));
        const { sql, sent } = counting(raw);
        const storage = storageOn(schema, {}, sql);
        try {
          const during = async (fn: () => Promise<unknown>) => {
            sent.length = 0;
            await fn();
            return sent.length;
          };
          const key = name('k');
          expect(await during(() => storage.kv.set(key, { a: 1 }))).toBe(1);
          expect(await during(() => storage.kv.set(key, 2, { ttl: 60 }))).toBe(1);
          expect(await during(() => storage.kv.get(key))).toBe(1);
          expect(await during(() => storage.kv.exists(key))).toBe(1);
          const session = await storage.sessions.create({ clusterId: name('c') });
          expect(await during(() => storage.sessions.isClusterActive(session.clusterId))).toBe(1);
          const queue = name('q');
          expect(await during(() => storage.queues.send(queue, 'm'))).toBe(1);
          expect(await during(() => storage.queues.send(queue, 'd', { dedupId: 'x' }))).toBe(1);
          let leases: Awaited<ReturnType<Storage['queues']['receive']>> = [];
          expect(
            await during(async () => {
              leases = await storage.queues.receive(queue, { max: 10 });
            }),
          ).toBe(1);
          expect(leases).toHaveLength(2);
          expect(await during(() => storage.queues.ack(queue, leases[0]!.id, leases[0]!.receipt))).toBe(1);
          expect(await during(() => storage.events.publish(name('ch'), 'e'))).toBe(1);
          // Nothing per call sets a search_path: every statement names its schema.
          expect(sent.join('\n')).not.toMatch(/search_path/i);
        } finally {
          await raw.close();
        }
      });
    });

    describe('queues', () => {
      it('8 concurrent receivers over 5,000 messages: each message delivered once when acked', async () => {
        const schema = await freshSchema();
        const producer = storageOn(schema);
        const queue = name('q');
        const total = 5000;
        // Sent in parallel batches; order within the queue is still the enqueue order.
        for (let i = 0; i < total; i += 250) {
          await Promise.all(
            Array.from({ length: Math.min(250, total - i) }, (_, j) => producer.queues.send(queue, i + j)),
          );
        }
        expect((await producer.queues.stats(queue)).depth).toBe(total);

        const seen = new Map<number, number>();
        const receivers = Array.from({ length: 8 }, () => storageOn(schema, { postgresql: { poolSize: 2 } }));
        await Promise.all(
          receivers.map(async (storage) => {
            for (;;) {
              const batch = await storage.queues.receive(queue, { max: 10, visibilityTimeout: 120 });
              if (batch.length === 0) return;
              for (const m of batch) {
                seen.set(m.payload as number, (seen.get(m.payload as number) ?? 0) + 1);
                await storage.queues.ack(queue, m.id, m.receipt);
              }
            }
          }),
        );
        expect(seen.size).toBe(total);
        expect([...seen.values()].every((n) => n === 1)).toBe(true);
        expect(await producer.queues.stats(queue)).toEqual({ depth: 0, delayed: 0, inFlight: 0, dead: 0 });
      }, 120_000);

      it('a sender that does not listen still wakes a receiver that does (NOTIFY is always sent)', async () => {
        const schema = await freshSchema();
        // Polling (every 60 s) finds the message only when the 20 s wait ends, past this test's
        // 15 s limit: only the notification can wake the receiver in time.
        const receiver = storageOn(schema, { postgresql: { listen: true, pollInterval: 60 } });
        const sender = storageOn(schema, { postgresql: { listen: false } });
        const queue = name('q');
        const waiting = receiver.queues.receive(queue, { wait: 20 });
        await sleep(300);
        await sender.queues.send(queue, 'woken');
        const [got] = await waiting;
        expect(got?.payload).toBe('woken');
      }, 15_000);

      it('a dedupId whose window ended is answered with the new message, also under concurrent sends', async () => {
        const schema = await freshSchema();
        const storage = storageOn(schema, { queues: { dedupWindow: 0.2 } });
        const queue = name('q');
        for (let round = 0; round < 5; round++) {
          const first = await storage.queues.send(queue, round, { dedupId: `same-${round}` });
          const [lease] = await storage.queues.receive(queue);
          await storage.queues.ack(queue, lease!.id, lease!.receipt);
          await sleep(300);
          // The first window ended: exactly one of these enqueues; all answer its id, never the acked one.
          const racing = await Promise.all(
            Array.from({ length: 8 }, () =>
              storage.queues.send(queue, 'again', { dedupId: `same-${round}` }),
            ),
          );
          const fresh = racing.filter((r) => !r.duplicate);
          expect(fresh).toHaveLength(1);
          expect(racing.every((r) => r.id === fresh[0]!.id)).toBe(true);
          expect(racing.some((r) => r.id === first.id)).toBe(false);
          const [again] = await storage.queues.receive(queue);
          await storage.queues.ack(queue, again!.id, again!.receipt);
        }
      });

      it('a lease that ended on the last attempt is dead: its receipt is refused', async () => {
        const schema = await freshSchema();
        const storage = storageOn(schema, { queues: { maxAttempts: 1 } });
        const queue = name('q');
        await storage.queues.send(queue, 'once');
        const [lease] = await storage.queues.receive(queue, { visibilityTimeout: 0.1 });
        await sleep(300);
        const error = await failure(() => storage.queues.ack(queue, lease!.id, lease!.receipt));
        expect(error).toBeInstanceOf(ConflictError);
        expect((await storage.queues.deadLetters(queue)).map((m) => m.id)).toEqual([lease!.id]);
      });

      it('receivers of one queue that find it empty together share one look-up of when to look again', async () => {
        const schema = await freshSchema();
        const { sql, sent } = counting(await createSql(pgConfig(schema, { listen: false })));
        const storage = storageOn(schema, { postgresql: { listen: false, pollInterval: 60 } }, sql);
        const queue = name('q');
        const got = await Promise.all(
          Array.from({ length: 8 }, () => storage.queues.receive(queue, { wait: 0.3 })),
        );
        expect(got.flat()).toEqual([]);
        // Their claims go out as three statements at most (two at once, then the other six
        // together): one look-up for each at most, not one per receiver.
        expect(sent.filter((text) => text.includes('min(visible_at)')).length).toBeLessThanOrEqual(3);
        await sql.close();
      });

      /**
       * Each statement run in a transaction of its own, followed by a look at the
       * `synchronous_commit` its commit will use: what a statement set for its transaction shows.
       */
      function commitSettings(sql: Sql): { sql: Sql; seen: Map<string, Set<string>> } {
        const seen = new Map<string, Set<string>>();
        const kind = (text: string) =>
          /INSERT INTO/.test(text)
            ? 'send'
            : /acked AS/.test(text)
              ? 'ack and claim'
              : /ELSE 'ready' END/.test(text)
                ? 'nack'
                : /SET visible_at = now\(\)/.test(text)
                  ? 'extend'
                  : undefined;
        return {
          seen,
          sql: {
            ...sql,
            driver: sql.driver,
            query: <R extends Row>(text: string, params?: readonly unknown[]) =>
              sql.transaction(async (tx) => {
                const rows = await tx.query<R>(text, params);
                const [row] = await tx.query<{ setting: string }>(
                  `SELECT current_setting('synchronous_commit') AS setting`,
                );
                const what = kind(text);
                if (what) seen.set(what, new Set([...(seen.get(what) ?? []), row!.setting]));
                return rows;
              }),
            close: () => sql.close(),
          },
        };
      }
      /** Send, receive, ack, nack and extend through a storage with `leaseCommit`, one connection. */
      async function leaseCommits(leaseCommit: 'async' | 'sync' | undefined) {
        const schema = await freshSchema();
        const config = pgConfig(schema, { listen: false, poolSize: 1, leaseCommit });
        const { sql, seen } = commitSettings(await createSql(config));
        const storage = storageOn(schema, { postgresql: { listen: false, poolSize: 1, leaseCommit } }, sql);
        const queue = name('q');
        await storage.queues.send(queue, 1);
        await storage.queues.send(queue, 2);
        const [first] = await storage.queues.receive(queue);
        await storage.queues.ack(queue, first!.id, first!.receipt);
        const [second] = await storage.queues.receive(queue);
        await storage.queues.extend(queue, second!.id, second!.receipt, 60);
        await storage.queues.nack(queue, second!.id, second!.receipt);
        await storage.queues.send(queue, 3);
        await sql.close();
        return Object.fromEntries([...seen].map(([what, settings]) => [what, [...settings]]));
      }

      it('lease writes commit without waiting for the disk by default; sends wait, on the same connection', async () => {
        expect(await leaseCommits(undefined)).toEqual({
          send: ['on'],
          'ack and claim': ['off'],
          extend: ['off'],
          nack: ['off'],
        });
      });

      it("a hybrid's PostgreSQL queues wait for the disk whatever leaseCommit says (its journal is one)", async () => {
        const schema = await freshSchema();
        const pg = { url: URL, schema, listen: false, poolSize: 1, leaseCommit: 'async' as const };
        const { sql, seen } = commitSettings(await createSql(pgConfig(schema, pg)));
        const postgresql = 'postgresql' as const;
        const routing = {
          sessions: postgresql,
          authentication: postgresql,
          audit: postgresql,
          queues: postgresql,
          cache: postgresql,
          pubsub: postgresql,
        };
        const storage = createStorage(
          { backend: 'hybrid', postgresql: pg, hybrid: { routing, fallback: { enabled: false } } },
          { postgresql: { sql } },
        );
        storages.push(storage);
        const queue = name('q');
        await storage.queues.send(queue, 1);
        const [message] = await storage.queues.receive(queue);
        await storage.queues.ack(queue, message!.id, message!.receipt);
        await sql.close();
        expect(seen.get('ack and claim')).toEqual(new Set(['on']));
      });

      it('leaseCommit: sync makes lease writes wait for the disk too', async () => {
        expect(await leaseCommits('sync')).toEqual({
          send: ['on'],
          'ack and claim': ['on'],
          extend: ['on'],
          nack: ['on'],
        });
      });

      it('receivers sharing a queue with short leases, nacks and abandoned leases ack every message once', async () => {
        const schema = await freshSchema();
        const total = 400;
        const producer = storageOn(schema, { queues: { maxAttempts: 50 } });
        const queue = name('q');
        for (let i = 0; i < total; i += 100) {
          await Promise.all(
            Array.from({ length: Math.min(100, total - i) }, (_, j) => producer.queues.send(queue, i + j)),
          );
        }
        const acked = new Map<number, number>();
        const receivers = Array.from({ length: 6 }, () =>
          storageOn(schema, { queues: { maxAttempts: 50 }, postgresql: { poolSize: 2 } }),
        );
        let turn = 0;
        await Promise.all(
          receivers.map(async (storage) => {
            while (acked.size < total) {
              const batch = await storage.queues.receive(queue, { max: 5, visibilityTimeout: 0.2, wait: 1 });
              for (const m of batch) {
                const fate = turn++ % 6;
                if (fate === 0) continue; // abandoned: the lease ends and the message comes back
                if (fate === 1) {
                  await storage.queues.nack(queue, m.id, m.receipt).catch(() => {});
                  continue;
                }
                try {
                  await storage.queues.ack(queue, m.id, m.receipt);
                  const n = m.payload as number;
                  acked.set(n, (acked.get(n) ?? 0) + 1);
                } catch {
                  // The lease ended and another receiver holds the message: it acks it.
                }
              }
            }
          }),
        );
        expect(acked.size).toBe(total);
        expect([...acked.values()].every((n) => n === 1)).toBe(true);
        expect(await producer.queues.stats(queue)).toEqual({ depth: 0, delayed: 0, inFlight: 0, dead: 0 });
      }, 60_000);

      it('LISTEN is tried again after it failed: long polls are woken by notifications again', async () => {
        const schema = await freshSchema();
        const raw = await createSql(pgConfig(schema, { listen: true }));
        let failures = 1;
        const flaky: Sql = {
          ...raw,
          driver: raw.driver,
          listen: async (channel, listener) => {
            if (failures-- > 0) throw new BackendUnavailableError('postgresql', 'LISTEN refused once');
            return raw.listen!(channel, listener);
          },
        };
        // Polling every 60 s: a receive that gets its message within this test's 15 s was woken by NOTIFY.
        const receiver = storageOn(schema, { postgresql: { listen: true, pollInterval: 60 } }, flaky);
        const sender = storageOn(schema, { postgresql: { listen: false } });
        const queue = name('q');
        try {
          expect(await receiver.queues.receive(queue, { wait: 0.05 })).toEqual([]); // LISTEN fails here
          expect(failures).toBe(0);
          await sleep(1200);
          const waiting = receiver.queues.receive(queue, { wait: 20 });
          await sleep(300);
          await sender.queues.send(queue, 'heard');
          expect((await waiting)[0]?.payload).toBe('heard');
        } finally {
          await receiver.close();
          await raw.close();
        }
      }, 15_000);

      it('a long poll without LISTEN still wakes for a message sent meanwhile (polling)', async () => {
        const schema = await freshSchema();
        const storage = storageOn(schema, { postgresql: { listen: false, pollInterval: 0.05 } });
        const queue = name('q');
        const waiting = storage.queues.receive(queue, { wait: 10 });
        await sleep(200);
        await storage.queues.send(queue, 'late');
        const [got] = await waiting;
        expect(got?.payload).toBe('late');
      });
    });

    describe('events', () => {
      it('a 100 KB event round-trips through publish → subscribe and history', async () => {
        const schema = await freshSchema();
        const storage = storageOn(schema);
        const channel = name('ch');
        const message = { blob: 'x'.repeat(100 * 1024), n: 1 };
        const received: PublishedEvent[] = [];
        const stop = await storage.events.subscribe(channel, (e) => {
          received.push(e);
        });
        try {
          const { id } = await storage.events.publish(channel, message);
          await vi.waitFor(() => expect(received).toHaveLength(1), { timeout: 10_000 });
          expect(received[0]).toMatchObject({ id, channel, message });
          const [stored] = await storage.events.history(channel);
          expect(stored).toMatchObject({ id, message });
        } finally {
          await stop();
        }
      });

      it('subscribe without LISTEN delivers by polling, in order', async () => {
        const schema = await freshSchema();
        const storage = storageOn(schema, { postgresql: { listen: false, pollInterval: 0.05 } });
        const channel = name('ch');
        const received: unknown[] = [];
        const stop = await storage.events.subscribe(channel, (e) => {
          received.push(e.message);
        });
        try {
          for (let i = 0; i < 5; i++) await storage.events.publish(channel, i);
          await vi.waitFor(() => expect(received).toEqual([0, 1, 2, 3, 4]), { timeout: 10_000 });
        } finally {
          await stop();
        }
      });
    });

    describe('kv', () => {
      it('concurrent setMany calls over the same keys in different orders all succeed', async () => {
        const schema = await freshSchema();
        const storage = storageOn(schema, { postgresql: { poolSize: 8 } });
        const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
        const calls = Array.from({ length: 40 }, (_, n) => {
          const order = n % 2 === 0 ? keys : [...keys].reverse();
          return storage.kv.setMany(order.map((key) => ({ key, value: n })));
        });
        const results = await Promise.allSettled(calls);
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
        const values = await storage.kv.getMany(keys);
        expect(values.every((v) => typeof v === 'number')).toBe(true);
      });
    });

    describe('sweep', () => {
      it('deletes only expired rows and reports how many', async () => {
        const schema = await freshSchema();
        const storage = storageOn(schema, { audit: { maxEntries: 2 } });
        for (let i = 0; i < 7; i++) await storage.kv.set(`gone-${i}`, i, { ttl: 0.05 });
        for (let i = 0; i < 3; i++) await storage.kv.set(`kept-${i}`, i, { ttl: 600 });
        await storage.kv.set('forever', true);
        for (let i = 0; i < 4; i++) await storage.sessions.create({ clusterId: 'c', ttl: 0.05 });
        const live = await storage.sessions.create({ clusterId: 'c', ttl: 600 });
        await storage.tokens.issue({ identity: 'who', scopes: ['kv:read'], ttl: 0.05 });
        const token = await storage.tokens.issue({ identity: 'who', scopes: ['kv:read'] });
        for (let i = 0; i < 5; i++) await storage.audit.append({ identity: 'who', action: `a${i}` });
        await sleep(200);

        const count = async (table: string) =>
          Number(
            (
              await admin.query<{ n: number }>(
                `SELECT count(*)::int AS n FROM ${quoteIdent(schema)}.${table}`,
              )
            )[0]!.n,
          );
        // Expired rows are invisible before any sweep, but still take space.
        expect(await storage.kv.get('gone-0')).toBeUndefined();
        expect(await count('kv_store')).toBe(11);

        const report = await storage.sweep({ batchSize: 3 });
        expect(report).toMatchObject({ kv: 7, sessions: 4, tokens: 1, audit: 3 });
        expect(await count('kv_store')).toBe(4);
        expect(await count('sessions')).toBe(1);
        expect(await count('tokens')).toBe(1);
        expect(await count('audit_log')).toBe(2);
        expect(await storage.kv.get('kept-2')).toBe(2);
        expect(await storage.kv.get('forever')).toBe(true);
        expect(await storage.sessions.get(live.sessionId)).toEqual(live);
        expect((await storage.tokens.verify(token.token))?.id).toBe(token.id);

        const again = await storage.sweep();
        expect(again).toMatchObject({ kv: 0, sessions: 0, tokens: 0, audit: 0, events: 0, queues: 0 });
      });

      it('trims channels past a bound lowered since their events were published', async () => {
        const schema = await freshSchema();
        const channel = name('audit-ch');
        await storageOn(schema).events.publish(channel, 0);
        const wide = storageOn(schema);
        for (let i = 1; i < 10; i++) await wide.events.publish(channel, i);
        const narrow = storageOn(schema, { events: { maxHistoryByChannel: { 'audit-ch-*': 4 } } });
        const report = await narrow.sweep();
        expect(report.events).toBe(6);
        expect((await narrow.events.history(channel)).map((e) => e.message)).toEqual([6, 7, 8, 9]);
      });
    });

    describe('connections', () => {
      const register = (storage: Storage, connectionId: string, ttl?: number) =>
        storage.connections.register({
          connectionId,
          identity: 'relay',
          tokenId: `t-${connectionId}`,
          scopes: ['events:subscribe'],
          resources: ['*'],
          ...(ttl === undefined ? {} : { ttl }),
        });

      it('subscriptions go with their connection (ON DELETE CASCADE): remove, a direct delete, the sweep', async () => {
        const schema = await freshSchema();
        const storage = storageOn(schema);
        const count = async (table: string, connectionId?: string) =>
          Number(
            (
              await admin.query<{ n: number }>(
                `SELECT count(*)::int AS n FROM ${quoteIdent(schema)}.${table}${connectionId ? ' WHERE connection_id = $1' : ''}`,
                connectionId ? [connectionId] : [],
              )
            )[0]!.n,
          );
        await register(storage, 'kept');
        await register(storage, 'removed');
        await register(storage, 'deleted');
        const short = await register(storage, 'expired', 1);
        for (const id of ['kept', 'removed', 'deleted', 'expired']) {
          for (const ch of ['a', 'b']) expect(await storage.connections.subscribe(id, ch)).toBe(true);
        }
        expect(await count('ws_subscriptions')).toBe(8);

        expect(await storage.connections.remove('removed')).toBe(true);
        expect(await count('ws_subscriptions', 'removed')).toBe(0);
        // Whoever deletes a connection row (an operator too) takes its subscriptions with it.
        await admin.query(`DELETE FROM ${quoteIdent(schema)}.ws_connections WHERE connection_id = 'deleted'`);
        expect(await count('ws_subscriptions', 'deleted')).toBe(0);
        expect((await storage.connections.subscribers('a')).connectionIds).toEqual(['expired', 'kept']);

        await sleep(Math.max(0, Date.parse(short.expiresAt) - Date.now()) + 250);
        // Invisible at once, though its rows are still there until the sweep.
        expect((await storage.connections.subscribers('a')).connectionIds).toEqual(['kept']);
        expect(await count('ws_subscriptions', 'expired')).toBe(2);
        const report = await storage.sweep({ batchSize: 1 });
        expect(report.connections).toBe(1);
        expect(await count('ws_subscriptions', 'expired')).toBe(0);
        expect(await count('ws_connections')).toBe(1);
        expect(await count('ws_subscriptions')).toBe(2);
        expect((await storage.connections.get('kept'))?.channels).toEqual(['a', 'b']);
      });

      it('get and subscribers are one statement; register and subscribe one transaction', async () => {
        const schema = await freshSchema();
        const raw = await createSql(pgConfig(schema, { listen: false }));
        const { sql, sent } = counting(raw);
        const storage = storageOn(schema, {}, sql);
        try {
          const during = async (fn: () => Promise<unknown>) => {
            sent.length = 0;
            await fn();
            return [...sent];
          };
          expect(await during(() => register(storage, 'c1'))).toEqual(['BEGIN']);
          expect(await during(() => storage.connections.subscribe('c1', 'ch'))).toEqual(['BEGIN']);
          expect(await during(() => storage.connections.get('c1'))).toHaveLength(1);
          expect(await during(() => storage.connections.subscribers('ch'))).toHaveLength(1);
          expect(await during(() => storage.connections.unsubscribe('c1', 'ch'))).toHaveLength(1);
          expect(await during(() => storage.connections.remove('c1'))).toHaveLength(1);
        } finally {
          await raw.close();
        }
      });

      it('a schema at version 1 says to run migrations, and 0002 brings the registry', async () => {
        const schema = `kst_pgt_${run}_${schemas.length}`;
        schemas.push(schema);
        const all = await loadSchemaMigrations();
        await applySchemaMigrations(admin, { schema, migrations: all.filter((m) => m.version === 1) });
        const storage = storageOn(schema);
        await storage.kv.set('k', 1);
        const error = await failure(() => register(storage, 'c1'));
        expect(error).toBeInstanceOf(BackendUnavailableError);
        expect(String((error as Error).message)).toMatch(/migrat/i);
        const result = await applySchemaMigrations(admin, {
          schema,
          migrations: all.filter((m) => m.version <= 2),
        });
        expect(result.applied.map((m) => m.file)).toEqual(['0002_connections.sql']);
        // Registrations as this version writes them need the later files too (0005: their token).
        expect(String(((await failure(() => register(storage, 'c1'))) as Error).message)).toMatch(/migrat/i);
        await applySchemaMigrations(admin, { schema });
        expect((await register(storage, 'c1')).channels).toEqual([]);
        expect(await storage.kv.get('k')).toBe(1);
      });

      it('0005 applied to a schema at version 4 keeps its registrations, with no token: their next frame closes them', async () => {
        const schema = `kst_pgt_${run}_${schemas.length}`;
        schemas.push(schema);
        const all = await loadSchemaMigrations();
        await applySchemaMigrations(admin, { schema, migrations: all.filter((m) => m.version <= 4) });
        // A registration as the code before 0005 wrote it, subscribed to a channel.
        await admin.query(
          `INSERT INTO ${quoteIdent(schema)}.ws_connections (connection_id, identity, scopes, resources, connected_at, expires_at)
           VALUES ('before', 'relay', '{events:subscribe}', '{*}', now(), now() + interval '1 hour')`,
        );
        await admin.query(`INSERT INTO ${quoteIdent(schema)}.ws_subscriptions VALUES ('ch', 'before')`);

        const result = await applySchemaMigrations(admin, {
          schema,
          migrations: all.filter((m) => m.version <= 5),
        });
        expect(result.applied.map((m) => m.file)).toEqual(['0005_connection_tokens.sql']);
        const storage = storageOn(schema);
        expect(await storage.connections.get('before')).toMatchObject({
          tokenId: '',
          tokenExpiresAt: null,
          channels: ['ch'],
        });
        expect(await storage.connections.withExpiredToken()).toEqual([]);
        // New registrations carry their token; the column has no default left.
        expect((await register(storage, 'after')).tokenId).toBe('t-after');
        const insert = admin.query(
          `INSERT INTO ${quoteIdent(schema)}.ws_connections (connection_id, identity, scopes, resources, connected_at, expires_at)
           VALUES ('no-token', 'relay', '{admin}', '{*}', now(), now() + interval '1 hour')`,
        );
        await expect(insert).rejects.toThrow(/token_id/);
      });

      it('ids and channels that look like SQL are just names', async () => {
        const schema = await freshSchema();
        const storage = storageOn(schema);
        const evil = `'; DELETE FROM ${quoteIdent(schema)}.ws_connections; --`;
        await register(storage, evil);
        await register(storage, 'other');
        expect(await storage.connections.subscribe(evil, evil)).toBe(true);
        expect(await storage.connections.subscribe('other', evil)).toBe(true);
        expect((await storage.connections.subscribers(evil)).connectionIds).toEqual([evil, 'other'].sort());
        expect((await storage.connections.get(evil))?.channels).toEqual([evil]);
        expect(await storage.connections.get('other')).toBeDefined();
      });
    });

    describe('tokens', () => {
      it('a schema at version 3 says to run migrations; 0004 keeps the tokens issued before it, without an issuer', async () => {
        const schema = `kst_pgt_${run}_${schemas.length}`;
        schemas.push(schema);
        const all = await loadSchemaMigrations();
        await applySchemaMigrations(admin, { schema, migrations: all.filter((m) => m.version <= 3) });
        // A token as the code before lineage wrote it.
        const secret = `kbs_${randomBytes(32).toString('base64url')}`;
        await admin.query(
          `INSERT INTO ${quoteIdent(schema)}.tokens (id, hash, identity, scopes, resources, created_at, expires_at)
           VALUES ('old', $1, 'old-admin', '{admin}', '{team-*}', now(), NULL)`,
          [hashToken(secret)],
        );
        const storage = storageOn(schema);
        const error = await failure(() => storage.tokens.issue({ identity: 'new', scopes: ['kv:read'] }));
        expect(error).toBeInstanceOf(BackendUnavailableError);
        expect(String((error as Error).message)).toMatch(/migrat/i);

        const result = await applySchemaMigrations(admin, {
          schema,
          migrations: all.filter((m) => m.version <= 4),
        });
        expect(result.applied.map((m) => m.file)).toEqual(['0004_token_lineage.sql']);
        const old = await storage.tokens.verify(secret);
        expect(old).toMatchObject({ id: 'old', issuerId: null, resources: ['team-*'] });
        const child = await storage.tokens.issue({
          identity: 'child',
          scopes: ['kv:read'],
          resources: ['team-a'],
          issuerId: 'old',
        });
        expect((await storage.tokens.page({ within: ['team-*'] })).tokens.map((t) => t.id)).toEqual([
          'old',
          child.id,
        ]);
        expect(await storage.tokens.revoke('old')).toEqual(['old', child.id]);
      });

      it('a subscriber reads history only for an event its notification cannot carry: small events cost no statement', async () => {
        const schema = await freshSchema();
        // Polling once a minute: within this test only notifications and gaps make the subscriber read.
        const raw = await createSql(pgConfig(schema, { pollInterval: 60 }));
        const { sql, sent } = counting(raw);
        const publisher = storageOn(schema, { postgresql: { listen: false } });
        // A subscription hears nothing before its LISTEN is established, and subscribe waits for
        // that only so long: on a loaded machine it may return first, and the subscriber then
        // reads what it missed once it listens. The count is about a subscriber that listens, so
        // another storage on the same connections (whose statements are not counted) establishes
        // the LISTEN first: with polling once a minute, it hears its event only once that is done.
        const warm = storageOn(schema, { postgresql: { pollInterval: 60 } }, raw);
        const warmChannel = name('warm');
        const warmed: PublishedEvent[] = [];
        const stopWarm = await warm.events.subscribe(warmChannel, (event) => {
          warmed.push(event);
        });
        await publisher.events.publish(warmChannel, 0);
        await vi.waitFor(() => expect(warmed).toHaveLength(1), { timeout: 10_000 });
        const subscriber = storageOn(schema, { postgresql: { pollInterval: 60 } }, sql);
        const channel = name('ch');
        const received: PublishedEvent[] = [];
        const stop = await subscriber.events.subscribe(channel, (event) => {
          received.push(event);
        });
        const large = (n: number) => ({ n, blob: 'x'.repeat(9000) });
        const historyReads = () => sent.filter((text) => /^SELECT .* FROM \S+\.events\b/.test(text)).length;
        try {
          sent.length = 0;
          for (let n = 1; n <= 10; n++) await publisher.events.publish(channel, n);
          await vi.waitFor(() => expect(received).toHaveLength(10), { timeout: 5000 });
          expect(sent).toEqual([]);
          // Large and small interleaved: each large one is one read (it carries the small one
          // after it when both are there), and a small one that follows the last seen costs none.
          const items = [large(11), 12, 13, large(14), 15, 16];
          for (const item of items) await publisher.events.publish(channel, item);
          await vi.waitFor(() => expect(received).toHaveLength(16), { timeout: 5000 });
          const reads = historyReads();
          expect(reads).toBeGreaterThanOrEqual(1);
          expect(reads).toBeLessThanOrEqual(2);
          sent.length = 0;
          for (let n = 17; n <= 26; n++) await publisher.events.publish(channel, n);
          await vi.waitFor(() => expect(received).toHaveLength(26), { timeout: 5000 });
          await sleep(200);
          expect(sent).toEqual([]);
          // No gap, no repeat: exactly what history holds, in order.
          expect(received).toEqual(await publisher.events.history(channel, { limit: 1000 }));
        } finally {
          await stop();
          await stopWarm();
          await raw.close();
        }
      });

      /**
       * A subscription polling once a minute whose connections are `raw`'s with `change`: a
       * missed notification or a failed read costs a minute or more unless the subscription
       * reads by itself. `heard(1)` and `heard(1, 2)` wait for what it received.
       */
      async function subscribedThrough(change: (raw: Sql) => Partial<Sql>) {
        const schema = await freshSchema();
        const raw = await createSql(pgConfig(schema, { pollInterval: 60 }));
        const subscriber = storageOn(
          schema,
          { postgresql: { pollInterval: 60 } },
          { ...raw, ...change(raw) },
        );
        const publisher = storageOn(schema, { postgresql: { listen: false } });
        const channel = name('ch');
        const received: Json[] = [];
        const stop = await subscriber.events.subscribe(channel, (event) => {
          received.push(event.message);
        });
        return {
          publish: (message: Json) => publisher.events.publish(channel, message),
          heard: (...messages: Json[]) =>
            vi.waitFor(() => expect(received).toEqual(messages), { timeout: 10_000 }),
          close: async () => {
            await stop();
            await raw.close();
          },
        };
      }

      it('a subscription whose LISTEN is established after subscribe returned reads what it missed then, not at the next poll', async () => {
        // LISTEN held back until released, as on a server too busy to open its connection in time
        // (subscribe returns without it: it waits for it only so long).
        let release = () => {};
        const released = new Promise<void>((resolve) => {
          release = resolve;
        });
        const subscription = await subscribedThrough((raw) => ({
          listen: async (channel, listener) => {
            await released;
            return raw.listen!(channel, listener);
          },
        }));
        try {
          // Its notification reaches no one.
          await subscription.publish(1);
          release();
          await subscription.heard(1);
          // And notifications flow from then on.
          await subscription.publish(2);
          await subscription.heard(1, 2);
        } finally {
          await subscription.close();
        }
      });

      it('a subscription whose LISTEN failed listens again by itself and reads what it missed, not at the next poll', async () => {
        // The first LISTEN fails, as when the server has no connection to spare.
        let attempts = 0;
        const subscription = await subscribedThrough((raw) => ({
          listen: async (channel, listener) => {
            if (attempts++ === 0)
              throw new BackendUnavailableError('postgresql', 'sorry, too many clients already');
            return raw.listen!(channel, listener);
          },
        }));
        try {
          await subscription.publish(1);
          await subscription.heard(1);
          expect(attempts).toBe(2);
          await subscription.publish(2);
          await subscription.heard(1, 2);
        } finally {
          await subscription.close();
        }
      });

      it('a subscriber whose history read failed reads again soon, not at the next poll', async () => {
        // Once armed, the next read of events fails as a statement timeout does (not repeated by the storage).
        let armed = false;
        const subscription = await subscribedThrough((raw) => ({
          query: (text, params) => {
            if (armed && /^\s*SELECT .* FROM \S+\.events\b/s.test(text)) {
              armed = false;
              return Promise.reject(new Error('canceling statement due to statement timeout'));
            }
            return raw.query(text, params);
          },
        }));
        try {
          armed = true;
          // Too large for its notification: the subscriber reads it, and that read fails.
          const large = { blob: 'x'.repeat(9000) };
          await subscription.publish(large);
          await subscription.heard(large);
          expect(armed).toBe(false);
        } finally {
          await subscription.close();
        }
      });

      it('a revoke is one transaction however deep the tree; an issue under an issuer one statement', async () => {
        const schema = await freshSchema();
        const raw = await createSql(pgConfig(schema, { listen: false }));
        const { sql, sent } = counting(raw);
        const storage = storageOn(schema, {}, sql);
        try {
          let issuer = await storage.tokens.issue({ identity: 'root', scopes: ['admin'] });
          const chain = [issuer.id];
          for (let depth = 0; depth < 30; depth++) {
            issuer = await storage.tokens.issue({ identity: 'link', scopes: ['admin'], issuerId: issuer.id });
            chain.push(issuer.id);
          }
          sent.length = 0;
          await storage.tokens.issue({ identity: 'leaf', scopes: ['kv:read'], issuerId: issuer.id });
          // The issuer's bounds (one read), then the insert that locks it.
          expect(sent).toHaveLength(2);
          sent.length = 0;
          const revoked = await storage.tokens.revoke(chain[0]!);
          expect(sent).toEqual(['BEGIN']);
          expect(revoked).toHaveLength(chain.length + 1);
          expect(revoked.slice(0, 1)).toEqual([chain[0]]);
        } finally {
          await raw.close();
        }
      });
    });

    describe('names are data', () => {
      it("a key, queue, channel or cluster id like '; DROP TABLE kv_store; -- is just a name", async () => {
        const schema = await freshSchema();
        const storage = storageOn(schema);
        const evil = `'; DROP TABLE kv_store; --`;
        const quoted = `"); DELETE FROM ${quoteIdent(schema)}.sessions; --`;
        await storage.kv.set(evil, evil);
        await storage.kv.set(quoted, 1);
        expect(await storage.kv.get(evil)).toBe(evil);
        expect(await storage.kv.getMany([evil, quoted, 'other'])).toEqual([evil, 1, undefined]);
        await storage.queues.send(evil, evil, { dedupId: evil });
        const [m] = await storage.queues.receive(evil);
        expect(m?.payload).toBe(evil);
        await storage.events.publish(evil, evil);
        expect((await storage.events.history(evil))[0]?.message).toBe(evil);
        const session = await storage.sessions.create({ clusterId: evil, correlationId: quoted });
        expect(await storage.sessions.isClusterActive(evil)).toBe(true);
        expect((await storage.sessions.byCorrelation(quoted))[0]?.sessionId).toBe(session.sessionId);
        const tables = await admin.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1`,
          [schema],
        );
        expect(Number(tables[0]!.n)).toBeGreaterThanOrEqual(9);
        expect(await storage.kv.exists(quoted)).toBe(true);
      });
    });

    describe('errors', () => {
      it('a schema without migrations says to run them, never "relation does not exist"', async () => {
        const schema = `kst_pgt_${run}_bare`;
        schemas.push(schema);
        await admin.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
        const storage = storageOn(schema);
        const error = await failure(() => storage.kv.get('k'));
        expect(error).toBeInstanceOf(BackendUnavailableError);
        expect((error as Error).message).toMatch(/run migrations/);
        expect((error as Error).message).not.toMatch(/does not exist/);
        const health = await storage.health();
        expect(health.status).toBe('down');
        expect(Object.values(health.checks)[0]?.error).toMatch(/run migrations/);
      });

      it('postgresql.migrate: true migrates an empty schema on first use', async () => {
        const schema = `kst_pgt_${run}_auto`;
        schemas.push(schema);
        const storage = storageOn(schema, { postgresql: { migrate: true } });
        await storage.kv.set('k', 'v');
        expect(await storage.kv.get('k')).toBe('v');
        expect((await storage.health()).status).toBe('ok');
      });

      it('the postgresql backend without DATABASE_URL is a ConfigError naming it', () => {
        const error = (() => {
          try {
            createStorage({ backend: 'postgresql', postgresql: { driver: 'pg' } });
          } catch (e) {
            return e;
          }
        })();
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).problems.join('\n')).toMatch(/DATABASE_URL/);
      });

      it('an unreachable server fails with a retryable BackendUnavailableError', async () => {
        const storage = storageOn('kubently', {
          postgresql: { url: 'postgres://postgres@127.0.0.1:1/test', connectTimeout: 2 },
        });
        const error = await failure(() => storage.kv.get('k'));
        expect(error).toBeInstanceOf(BackendUnavailableError);
        expect((error as BackendUnavailableError).retryable).toBe(true);
        expect((await storage.health()).status).toBe('down');
      });

      it('a closed storage refuses calls (no new connections) and close() lets running calls end', async () => {
        const schema = await freshSchema();
        const storage = createStorage({
          backend: 'postgresql',
          postgresql: { url: URL, schema, poolSize: 2 },
        });
        await storage.kv.set('k', 1);
        // Many more writes than connections: most are still waiting for one when close() comes.
        const writes = Array.from({ length: 100 }, (_, i) => storage.kv.set(`w${i}`, i));
        const closing = storage.close();
        const results = await Promise.allSettled(writes);
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
        await closing;
        const again = createStorage({ backend: 'postgresql', postgresql: { url: URL, schema } });
        storages.push(again);
        expect(await again.kv.get('w99')).toBe(99);
        // A long poll under way ends with nothing when its storage closes.
        const polling = createStorage({ backend: 'postgresql', postgresql: { url: URL, schema } });
        const waiting = polling.queues.receive(name('q'), { wait: 20 });
        await sleep(100);
        await polling.close();
        expect(await waiting).toEqual([]);
        const error = await failure(() => storage.kv.get('k'));
        expect(error).toBeInstanceOf(BackendUnavailableError);
        expect((error as Error).message).toMatch(/closed/);
        await expect(storage.close()).resolves.toBeUndefined();
      });

      it('connections killed by the server are replaced: later calls succeed', async () => {
        const schema = await freshSchema();
        const storage = storageOn(schema, { postgresql: { listen: false, poolSize: 4 } });
        await storage.kv.set('k', 0);
        for (let round = 0; round < 10; round++) {
          // Every pooled connection open and idle, then all of them killed at once (a server restart).
          await Promise.all(Array.from({ length: 4 }, () => storage.kv.get('k')));
          await admin.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'kubently-storage' AND pid <> pg_backend_pid() AND query ILIKE $1`,
            [`%${schema}%`],
          );
          // A read that meets dead pooled connections runs again until it finds a live one: no error reaches the caller.
          expect(await storage.kv.get('k')).toBe(0);
        }
      });
    });
  },
);

describe('postgresql on PGlite with a data directory', () => {
  it('keeps what was acknowledged across a restart of the embedded database', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'kst-pglite-'));
    const open = () =>
      createStorage({ backend: 'postgresql', postgresql: { driver: 'pglite', dataDir, migrate: true } });
    try {
      const first = open();
      await first.kv.set('k', { kept: true });
      await first.queues.send('q', 'queued');
      const session = await first.sessions.create({ clusterId: 'c', ttl: 600 });
      await first.close();

      const second = open();
      try {
        expect(await second.kv.get('k')).toEqual({ kept: true });
        expect((await second.queues.receive('q'))[0]?.payload).toBe('queued');
        expect(await second.sessions.get(session.sessionId)).toEqual(session);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
