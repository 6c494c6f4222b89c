/**
 * A transaction pooler the configuration does not know about is found and named, never a hang
 * or a silent loss: against real PgBouncers (transaction mode, session mode, and a stock one
 * that refuses the `statement_timeout` startup parameter) the tests start themselves.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { resolveConfig, type StorageConfigInput } from '../../lib/config/index.js';
import { PoolerMismatchError } from '../../lib/errors.js';
import { createStorage } from '../../lib/storage/index.js';
import { hearsNotify } from '../../lib/storage/postgresql/pooler.js';
import { createSql, quoteIdent, type Sql, withErrorMapping } from '../../lib/storage/postgresql/sql.js';
import type { PublishedEvent, Storage } from '../../lib/storage/types.js';
import { postgresBackend, testDatabaseUrl } from '../support/backends.js';
import { failure } from '../support/helpers.js';
import { type PgBouncer, pgbouncerUnavailable, startPgBouncer } from '../support/servers/pgbouncer.js';

const DIRECT = testDatabaseUrl();
const unavailable =
  pgbouncerUnavailable() ?? (await postgresBackend({ name: 'postgresql-pg', driver: 'pg' }).available());
if (unavailable && process.env.CI)
  throw new Error(`PgBouncer and PostgreSQL are required under CI: ${unavailable}`);
if (unavailable) console.warn(`\n⚠ test/postgresql/pooler SKIPPED: ${unavailable}\n`);

describe.skipIf(unavailable !== undefined)(
  `a transaction pooler the configuration does not expect${unavailable ? ` — SKIPPED: ${unavailable}` : ''}`,
  () => {
    /** Transaction mode, accepting the startup parameter: an operator got it to connect, nothing more. */
    let transaction: PgBouncer;
    let session: PgBouncer;
    /** Transaction mode as installed: refuses `statement_timeout` at connect. */
    let stock: PgBouncer;
    /** Like `transaction`, with one server connection. */
    let single: PgBouncer;
    const schemas: string[] = [];
    const storages: Storage[] = [];
    const sqls: Sql[] = [];

    beforeAll(async () => {
      const target = DIRECT;
      const ignore = ['statement_timeout'];
      [transaction, session, stock, single] = await Promise.all([
        startPgBouncer({ target, poolMode: 'transaction', ignoreStartupParameters: ignore }),
        startPgBouncer({ target, poolMode: 'session', ignoreStartupParameters: ignore }),
        startPgBouncer({ target, poolMode: 'transaction' }),
        startPgBouncer({ target, poolMode: 'transaction', ignoreStartupParameters: ignore, poolSize: 1 }),
      ]);
    });
    afterAll(async () => {
      await Promise.allSettled([...storages, ...sqls].map((s) => s.close()));
      await Promise.allSettled([transaction, session, stock, single].map((b) => b?.stop()));
      const admin = await openSql({ url: DIRECT });
      try {
        for (const schema of schemas)
          await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
      } finally {
        await admin.close();
      }
    });

    function openSql(postgresql: StorageConfigInput['postgresql']): Promise<Sql> {
      return createSql(
        resolveConfig({ postgresql: { listen: false, connectTimeout: 3, ...postgresql } }).postgresql,
      );
    }
    async function tracked(postgresql: StorageConfigInput['postgresql']): Promise<Sql> {
      const sql = await openSql(postgresql);
      sqls.push(sql);
      return sql;
    }
    function storage(url: string, postgresql: StorageConfigInput['postgresql'] = {}): Storage {
      const schema = `kst_pooler_${randomBytes(4).toString('hex')}`;
      schemas.push(schema);
      const s = createStorage({
        backend: 'postgresql',
        postgresql: { url, schema, migrate: true, connectTimeout: 3, pollInterval: 0.1, ...postgresql },
      });
      storages.push(s);
      return s;
    }

    it('a direct connection and a session-mode PgBouncer are never taken for a transaction pooler', async () => {
      for (const url of [DIRECT, session.url]) {
        for (const poolSize of [1, 5]) {
          const sql = await tracked({ url, poolSize });
          expect(await sql.detectTransactionPooler!(), `${url} pool ${poolSize}`).toBe(false);
        }
      }
    });

    it('PgBouncer in transaction mode is found, with a pool of one connection and of five', async () => {
      for (const poolSize of [1, 5]) {
        const sql = await tracked({ url: transaction.url, poolSize });
        expect(await sql.detectTransactionPooler!(), `pool ${poolSize}`).toBe(true);
      }
    });

    it('prepared statements (the default) behind it: the first operation fails, naming postgresql.pooler', async () => {
      const s = storage(transaction.url);
      const error = await failure(() => s.kv.set('k', 1));
      expect(error).toBeInstanceOf(PoolerMismatchError);
      expect((error as PoolerMismatchError).setting).toBe('postgresql.pooler');
      expect((error as PoolerMismatchError).retryable).toBe(false);
      expect((error as Error).message).toMatch(/transaction pooler.*postgresql\.pooler: transaction/);
      expect((error as Error).message).toMatch(/postgresql\.preparedStatements: false/);
      // Every later operation says the same, and health reports it.
      await expect(s.kv.get('k')).rejects.toBeInstanceOf(PoolerMismatchError);
      const health = await s.health();
      expect(health.status).toBe('down');
      expect(health.checks.postgresql?.error).toMatch(/postgresql\.pooler: transaction/);
      // The same storage configured for the pooler works.
      const fixed = storage(transaction.url, { pooler: 'transaction' });
      await fixed.kv.set('k', 1);
      expect(await fixed.kv.get('k')).toBe(1);
    });

    it('a prepared statement clashing (42P05) or lost (26000) on a server session is named too', async () => {
      // No first-use check at this level: the seam runs statements as told, and maps the errors
      // as the backend does. One server connection behind PgBouncer makes both cases certain.
      const text = `SELECT 1 AS kst_${randomBytes(6).toString('hex')}`;
      const open = async () =>
        withErrorMapping(await tracked({ url: single.url, poolSize: 1, preparedStatements: true }), 'public');
      const a = await open();
      const b = await open();
      await a.query(text); // prepared on the one server session
      // b's connection never prepared it, so it sends Parse, on that session: "already exists".
      const clash = await failure(() => b.query(text));
      // The server session is replaced; a's connection believes it prepared and sends only Bind.
      await single.admin('RECONNECT');
      const lost = await failure(() => a.query(text));
      for (const [error, state] of [
        [clash, '42P05'],
        [lost, '26000'],
      ] as const) {
        expect(error, state).toBeInstanceOf(PoolerMismatchError);
        expect((error as Error).message).toContain(`SQLSTATE ${state}`);
        expect((error as Error).message).toMatch(/postgresql\.pooler: transaction/);
      }
    });

    it('LISTEN behind it: waits poll, a subscription still gets every event, health says degraded', async () => {
      const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
      try {
        const s = storage(transaction.url, { preparedStatements: false });
        const got: PublishedEvent[] = [];
        const stop = await s.events.subscribe('ch', (event) => {
          got.push(event);
        });
        for (let i = 0; i < 5; i++) await s.events.publish('ch', i);
        await vi.waitFor(() => expect(got.map((e) => e.message)).toEqual([0, 1, 2, 3, 4]), {
          timeout: 10_000,
        });
        // A long poll still wakes up for a message sent meanwhile.
        const waiting = s.queues.receive('q', { wait: 10 });
        await s.queues.send('q', 'm');
        expect((await waiting).map((m) => m.payload)).toEqual(['m']);
        await stop();
        const health = await s.health();
        expect(health.status).toBe('degraded');
        expect(health.checks.postgresql?.ok).toBe(true);
        expect(health.checks.postgresql?.error).toMatch(
          /LISTEN does not hear.*postgresql\.pooler: transaction/,
        );
        expect(health.checks.postgresql?.error).toMatch(/postgresql\.listen: false/);
        const lines = logged.mock.calls.map(([line]) => String(line)).filter((l) => l.includes('LISTEN'));
        expect(lines).toHaveLength(1);
        expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'ERROR', setting: 'postgresql.pooler' });
      } finally {
        logged.mockRestore();
      }
    });

    it('at the seam: listen() rejects with PoolerMismatchError, and is not tried again', async () => {
      const sql = await tracked({ url: transaction.url, preparedStatements: false, listen: true });
      const listener = { onNotify: () => {}, onReconnect: () => {} };
      const first = await failure(() => sql.listen!('ch', listener));
      expect(first).toBeInstanceOf(PoolerMismatchError);
      const again = await failure(() => sql.listen!('other', listener));
      expect(again).toBe(first);
      // On a direct connection the same check passes and notifications flow.
      const direct = await tracked({ url: DIRECT, listen: true });
      const heard: string[] = [];
      const stop = await direct.listen!('ch', { onNotify: (p) => heard.push(p), onReconnect: () => {} });
      await direct.query(`SELECT pg_notify('ch', 'x')`);
      await vi.waitFor(() => expect(heard).toEqual(['x']), { timeout: 5000 });
      await stop();
    });

    it('the LISTEN check gives up after its bound when the listening session is lent elsewhere', async () => {
      const connect = async (url: string) => {
        const client = new pg.Client({ connectionString: url });
        client.on('error', () => {});
        await client.connect();
        return client;
      };
      for (const url of [transaction.url, DIRECT]) {
        const [listening, holder, notifier] = await Promise.all([connect(url), connect(url), connect(url)]);
        try {
          const heard = await hearsNotify(
            listening,
            async (channel, payload) => {
              // Behind the pooler this transaction holds the session that just ran the LISTEN,
              // so the NOTIFY goes out on another one and the notifier does not hear it either.
              await holder.query('BEGIN');
              await holder.query('SELECT 1');
              await notifier.query('SELECT pg_notify($1, $2)', [channel, payload]);
              return false;
            },
            1000,
          );
          expect(heard, url).toBe(url === DIRECT);
        } finally {
          await holder.query('COMMIT').catch(() => {});
          await Promise.all([listening, holder, notifier].map((c) => c.end()));
        }
      }
    });

    it('a PgBouncer refusing the statement_timeout startup parameter is named, not retried', async () => {
      const s = storage(stock.url);
      const error = await failure(() => s.kv.get('k'));
      expect(error).toBeInstanceOf(PoolerMismatchError);
      expect((error as PoolerMismatchError).retryable).toBe(false);
      expect((error as Error).message).toMatch(/unsupported startup parameter: statement_timeout/);
      expect((error as Error).message).toMatch(/postgresql\.pooler: transaction/);
      const fixed = storage(stock.url, { pooler: 'transaction' });
      await fixed.kv.set('k', 2);
      expect(await fixed.kv.get('k')).toBe(2);
    });
  },
);
