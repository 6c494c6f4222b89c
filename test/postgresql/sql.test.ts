/**
 * The SQL seam (lib/storage/postgresql/sql.ts) on each of its drivers: node-postgres against
 * the local Postgres (or DATABASE_URL), the Neon serverless driver through the WebSocket proxy
 * of local/neon-proxy.ts to that same Postgres, and PGlite in this process. Every driver answers
 * the same questions the same way; the tests of reconnecting LISTEN are for pg and neon only
 * (PGlite has no connection to lose). Also the proxy itself, against a TCP echo server.
 *
 * Without a reachable Postgres the pg and neon suites skip loudly; under CI they fail.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { resolveConfig, type StorageConfigInput } from '../../lib/config/index.js';
import { BackendUnavailableError } from '../../lib/errors.js';
import {
  createSql,
  type Listener,
  mapSqlError,
  quoteIdent,
  type Sql,
  type SqlDriverName,
  withErrorMapping,
} from '../../lib/storage/postgresql/sql.js';
import { type NeonProxy, startNeonProxy } from '../../local/neon-proxy.js';

type PgOverrides = NonNullable<StorageConfigInput['postgresql']>;

const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const CLOSED_URL = 'postgres://postgres@127.0.0.1:1/test';
/** Lower-case hex: table and channel names of this run, so concurrent runs never meet. */
const run = randomBytes(4).toString('hex');
/** Ceiling for things that happen "soon" (a notification, a reconnect); never a timing assertion. */
const SOON = { timeout: 20_000, interval: 10 };

async function postgresUnavailable(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    const cause = error instanceof AggregateError ? error.errors[0] : error;
    return `no Postgres at ${url.replace(/\/\/[^@/]*@/, '//')} (${cause instanceof Error ? cause.message : String(cause)})`;
  } finally {
    await client.end().catch(() => {});
  }
}

const unavailable = await postgresUnavailable(DATABASE_URL);
if (unavailable && process.env.CI) throw new Error(`PostgreSQL is required under CI: ${unavailable}`);
if (unavailable) {
  console.warn(
    `\n⚠ test/postgresql/sql.test.ts: pg and neon suites SKIPPED: ${unavailable} (install and start postgresql, or set DATABASE_URL)\n`,
  );
}

/** Records what a listener hears. */
function recorder() {
  const heard = { payloads: [] as string[], reconnects: 0 };
  const listener: Listener = {
    onNotify: (payload) => heard.payloads.push(payload),
    onReconnect: () => {
      heard.reconnects += 1;
    },
  };
  return { heard, listener };
}

interface DriverCase {
  driver: SqlDriverName;
  /** Talks to the Postgres server at DATABASE_URL (skipped without one). */
  server: boolean;
}

const DRIVERS: DriverCase[] = [
  { driver: 'pg', server: true },
  { driver: 'neon', server: true },
  { driver: 'pglite', server: false },
];

for (const { driver, server } of DRIVERS) {
  const skip = server && unavailable !== undefined;
  describe.skipIf(skip)(`sql seam [${driver}]${skip ? ` — SKIPPED: ${unavailable}` : ''}`, () => {
    const table = `sql_seam_${run}_${driver}`;
    const T = quoteIdent(table);
    let proxy: NeonProxy | undefined;
    let pglite: PGlite | undefined;
    let sql: Sql;
    const opened: Sql[] = [];

    /** A new Sql of this driver; closed in afterAll if the test did not. */
    async function open(overrides: PgOverrides = {}): Promise<Sql> {
      const base: PgOverrides =
        driver === 'pg'
          ? { driver, url: DATABASE_URL }
          : driver === 'neon'
            ? { driver, url: DATABASE_URL, wsProxy: proxy!.wsProxy, secureWebSocket: false }
            : { driver };
      const config = resolveConfig({ postgresql: { ...base, ...overrides } }).postgresql;
      const created = await createSql(config, { pglite: { instance: pglite } });
      opened.push(created);
      return created;
    }
    /** A channel name of this run (Postgres folds nothing: channels are quoted). */
    const channel = (name: string) => `seam_${run}_${driver}_${name}`;

    beforeAll(async () => {
      if (driver === 'neon') {
        // The Postgres of DATABASE_URL may live elsewhere under CI (a service container).
        const dbHost = new URL(DATABASE_URL).hostname.replace(/^\[(.*)\]$/, '$1');
        proxy = await startNeonProxy({ allowedHosts: ['127.0.0.1', 'localhost', '::1', dbHost] });
      }
      if (driver === 'pglite') pglite = await PGlite.create();
      sql = await open();
      await sql.script(
        `DROP TABLE IF EXISTS ${T}; CREATE TABLE ${T} (id int4 PRIMARY KEY, name text, tags text[], n float8)`,
      );
    });

    afterAll(async () => {
      try {
        await sql?.script(`DROP TABLE IF EXISTS ${T}`);
      } finally {
        for (const s of opened) await s.close().catch(() => {});
        await pglite?.close();
        await proxy?.close();
      }
    });

    const rows = async () =>
      sql.query<{ id: number; name: string | null }>(`SELECT id, name FROM ${T} ORDER BY id`);

    it('reports its driver', () => {
      expect(sql.driver).toBe(driver);
    });

    it('passes parameters: text, numbers, null and text[] arrays', async () => {
      const [row] = await sql.query(
        'SELECT $1::text AS t, $2::int4 AS i, $3::float8 AS f, $4::text AS nothing, $5::text[] AS arr, $6::text[] AS empty',
        ['héllo "wörld"; DROP TABLE x', 42, -2.5, null, ['a', 'b,c', '{d}', '"e"', null, ''], []],
      );
      expect(row).toStrictEqual({
        t: 'héllo "wörld"; DROP TABLE x',
        i: 42,
        f: -2.5,
        nothing: null,
        arr: ['a', 'b,c', '{d}', '"e"', null, ''],
        empty: [],
      });

      await sql.query(`DELETE FROM ${T}`);
      expect(
        await sql.query(`INSERT INTO ${T} (id, name, tags, n) VALUES ($1, $2, $3::text[], $4)`, [
          1,
          'one',
          ['x', 'y'],
          0.25,
        ]),
      ).toStrictEqual([]);
      expect(await sql.query(`SELECT id, name, tags, n FROM ${T} WHERE id = $1`, [1])).toStrictEqual([
        { id: 1, name: 'one', tags: ['x', 'y'], n: 0.25 },
      ]);
      expect(await sql.query(`SELECT id FROM ${T} WHERE $1 = ANY(tags)`, ['y'])).toStrictEqual([{ id: 1 }]);
      expect(await sql.query(`SELECT id FROM ${T} WHERE id = $1`, [2])).toStrictEqual([]);
    });

    it('decodes float8, int4, bool, text and null the same as every other driver', async () => {
      const [row] = await sql.query(
        `SELECT 1.5::float8 AS f, 0.1::float8 AS tenth, (-7)::int4 AS i, 2147483647::int4 AS max,
                true AS yes, false AS no, 'x'::text AS t, ''::text AS blank, NULL::int4 AS nothing,
                count(*)::int4 AS counted, (9007199254740993::int8)::text AS big`,
      );
      expect(row).toStrictEqual({
        f: 1.5,
        tenth: 0.1,
        i: -7,
        max: 2147483647,
        yes: true,
        no: false,
        t: 'x',
        blank: '',
        nothing: null,
        counted: 1,
        big: '9007199254740993',
      });
    });

    it('script() runs several statements, including a DO block with semicolons inside', async () => {
      await sql.query(`DELETE FROM ${T}`);
      await sql.script(`
        INSERT INTO ${T} (id, name) VALUES (1, 'a');
        INSERT INTO ${T} (id, name) VALUES (2, 'b');
        -- a comment between statements
        UPDATE ${T} SET name = name || '!' WHERE id = 2;
        DO $$ BEGIN
          INSERT INTO ${T} (id, name) VALUES (3, 'from do');
        END $$;
      `);
      expect(await rows()).toStrictEqual([
        { id: 1, name: 'a' },
        { id: 2, name: 'b!' },
        { id: 3, name: 'from do' },
      ]);
      await expect(sql.script(`SELECT 1; SELECT * FROM ${quoteIdent(`${table}_missing`)}`)).rejects.toThrow();
    });

    it('transaction() commits what the body did and answers its result', async () => {
      await sql.query(`DELETE FROM ${T}`);
      const result = await sql.transaction(async (tx) => {
        await tx.query(`INSERT INTO ${T} (id, name) VALUES ($1, $2)`, [1, 'committed']);
        await tx.script(`INSERT INTO ${T} (id, name) VALUES (2, 'by script')`);
        const [inside] = await tx.query<{ c: number }>(`SELECT count(*)::int4 AS c FROM ${T}`);
        return inside?.c;
      });
      expect(result).toBe(2);
      expect(await rows()).toStrictEqual([
        { id: 1, name: 'committed' },
        { id: 2, name: 'by script' },
      ]);
    });

    it('transaction() rolls back when the body throws, and the error propagates', async () => {
      await sql.query(`DELETE FROM ${T}`);
      const boom = new Error('boom');
      await expect(
        sql.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${T} (id, name) VALUES (1, 'rolled back')`);
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect(await rows()).toStrictEqual([]);

      // A failing statement: the rows before it are rolled back, its error comes out.
      await sql.query(`INSERT INTO ${T} (id, name) VALUES (5, 'kept')`);
      const duplicate = await sql
        .transaction(async (tx) => {
          await tx.query(`INSERT INTO ${T} (id, name) VALUES (6, 'rolled back')`);
          await tx.query(`INSERT INTO ${T} (id, name) VALUES (5, 'duplicate')`);
        })
        .catch((error: unknown) => error);
      expect(duplicate).toBeInstanceOf(Error);
      expect((duplicate as { code?: string }).code).toBe('23505');
      expect(await rows()).toStrictEqual([{ id: 5, name: 'kept' }]);

      // Every pooled connection is usable afterwards (none left inside an aborted transaction).
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) => sql.query<{ i: number }>('SELECT $1::int4 AS i', [i])),
      );
      expect(answers.map((r) => r[0]?.i)).toStrictEqual(Array.from({ length: 12 }, (_, i) => i));
    });

    it('transaction() does not resolve as committed when the body swallowed a failed statement', async () => {
      await sql.query(`DELETE FROM ${T}`);
      // Postgres answers COMMIT of an aborted transaction with a silent rollback.
      const outcome = await sql
        .transaction(async (tx) => {
          await tx.query(`INSERT INTO ${T} (id, name) VALUES (1, 'lost')`);
          await tx.query(`SELECT * FROM ${quoteIdent(`${table}_missing`)}`).catch(() => {});
          return 'resolved';
        })
        .catch((error: unknown) => error);
      expect(outcome).toBeInstanceOf(Error);
      expect((outcome as { code?: string }).code).toBe('42P01');
      expect(await rows()).toStrictEqual([]);

      // After ROLLBACK TO SAVEPOINT the transaction is alive again: it commits.
      const recovered = await sql.transaction(async (tx) => {
        await tx.query(`INSERT INTO ${T} (id, name) VALUES (2, 'kept')`);
        await tx.query('SAVEPOINT before_failure');
        await tx.query(`SELECT * FROM ${quoteIdent(`${table}_missing`)}`).catch(async () => {
          await tx.query('ROLLBACK TO SAVEPOINT before_failure');
        });
        return 'committed';
      });
      expect(recovered).toBe('committed');
      expect(await rows()).toStrictEqual([{ id: 2, name: 'kept' }]);
    });

    it('concurrent transactions each see and commit only their own work', async () => {
      await sql.query(`DELETE FROM ${T}`);
      await sql.query(`INSERT INTO ${T} (id, name, n) VALUES (0, 'counter', 0)`);
      const N = 12;
      const outcomes = await Promise.allSettled(
        Array.from({ length: N }, (_, k) =>
          sql.transaction(async (tx) => {
            const id = (k + 1) * 100;
            await tx.query(`INSERT INTO ${T} (id, name) VALUES ($1, $2)`, [id, `t${k}`]);
            // Yield between statements so the transactions' statements are in flight together.
            await new Promise((resolve) => setImmediate(resolve));
            const [counter] = await tx.query<{ n: number }>(`SELECT n FROM ${T} WHERE id = 0 FOR UPDATE`);
            await tx.query(`UPDATE ${T} SET n = $1 WHERE id = 0`, [counter!.n + 1]);
            await tx.query(`INSERT INTO ${T} (id, name) VALUES ($1, $2)`, [id + 1, `t${k}`]);
            const mine = await tx.query<{ id: number }>(`SELECT id FROM ${T} WHERE name = $1 ORDER BY id`, [
              `t${k}`,
            ]);
            if (k % 2 === 1) throw new Error(`abort ${k}`);
            return mine.map((r) => r.id);
          }),
        ),
      );
      for (const [k, outcome] of outcomes.entries()) {
        const id = (k + 1) * 100;
        if (k % 2 === 1) {
          expect(outcome).toMatchObject({ status: 'rejected', reason: { message: `abort ${k}` } });
        } else {
          expect(outcome).toStrictEqual({ status: 'fulfilled', value: [id, id + 1] });
        }
      }
      const committed = outcomes.flatMap((_, k) => (k % 2 === 0 ? [(k + 1) * 100, (k + 1) * 100 + 1] : []));
      expect((await rows()).map((r) => r.id)).toStrictEqual([0, ...committed]);
      const [counter] = await sql.query<{ n: number }>(`SELECT n FROM ${T} WHERE id = 0`);
      expect(counter?.n).toBe(N / 2);
    });

    it('listen delivers pg_notify payloads, up to ~7,000 bytes', async () => {
      const ch = channel('notify');
      const { heard, listener } = recorder();
      const stop = await sql.listen!(ch, listener);
      try {
        const big = `ünïcødé ${'x'.repeat(6980)}`;
        expect(Buffer.byteLength(big)).toBeGreaterThanOrEqual(6990);
        await sql.query('SELECT pg_notify($1, $2)', [ch, 'first']);
        await sql.query('SELECT pg_notify($1, $2)', [ch, big]);
        await sql.query('SELECT pg_notify($1, $2)', [ch, '']);
        await vi.waitFor(() => expect(heard.payloads).toHaveLength(3), SOON);
        expect(heard.payloads).toStrictEqual(['first', big, '']);
        // Committed notifications only.
        await sql
          .transaction(async (tx) => {
            await tx.query('SELECT pg_notify($1, $2)', [ch, 'never']);
            throw new Error('roll back');
          })
          .catch(() => {});
        await sql.query('SELECT pg_notify($1, $2)', [ch, 'last']);
        await vi.waitFor(() => expect(heard.payloads).toHaveLength(4), SOON);
        expect(heard.payloads[3]).toBe('last');
      } finally {
        await stop();
      }
    });

    it('listen keeps channels apart, including mixed-case ones', async () => {
      const lower = channel('lower');
      const mixed = `${channel('Mixed')}_CASE`;
      const a = recorder();
      const b = recorder();
      const stopA = await sql.listen!(lower, a.listener);
      const stopB = await sql.listen!(mixed, b.listener);
      try {
        await sql.query('SELECT pg_notify($1, $2)', [mixed, 'to mixed']);
        await sql.query('SELECT pg_notify($1, $2)', [lower, 'to lower']);
        await vi.waitFor(() => expect(a.heard.payloads).toStrictEqual(['to lower']), SOON);
        expect(b.heard.payloads).toStrictEqual(['to mixed']);
      } finally {
        await stopA();
        await stopB();
      }
    });

    it('the function listen answers stops delivery to that listener only', async () => {
      const ch = channel('unlisten');
      const barrier = channel('barrier');
      const stopped = recorder();
      const staying = recorder();
      const fence = recorder();
      const stop = await sql.listen!(ch, stopped.listener);
      const stopStaying = await sql.listen!(ch, staying.listener);
      const stopFence = await sql.listen!(barrier, fence.listener);
      try {
        await sql.query('SELECT pg_notify($1, $2)', [ch, 'before']);
        await vi.waitFor(() => expect(stopped.heard.payloads).toStrictEqual(['before']), SOON);

        await stop();
        await sql.query('SELECT pg_notify($1, $2)', [ch, 'after one stopped']);
        await vi.waitFor(() => expect(staying.heard.payloads).toContain('after one stopped'), SOON);

        await stopStaying();
        await sql.query('SELECT pg_notify($1, $2)', [ch, 'after all stopped']);
        // Notifications arrive in commit order: once the fence's has arrived, the one before it would have too.
        await sql.query('SELECT pg_notify($1, $2)', [barrier, 'fence']);
        await vi.waitFor(() => expect(fence.heard.payloads).toStrictEqual(['fence']), SOON);
        expect(stopped.heard.payloads).toStrictEqual(['before']);
        expect(staying.heard.payloads).toStrictEqual(['before', 'after one stopped']);
        await stop(); // a second call is harmless
      } finally {
        await stopFence();
      }
    });

    if (driver !== 'pglite') {
      it('a LISTEN connection that is killed comes back: onReconnect, then notifications again', async () => {
        const own = await open();
        const ch = channel('reconnect');
        const { heard, listener } = recorder();
        const stop = await own.listen!(ch, listener);
        /** The backends whose last statement was this test's LISTEN (the channel is unique to the run). */
        const listenerPids = async () =>
          (
            await sql.query<{ pid: number }>(
              `SELECT pid FROM pg_stat_activity WHERE application_name = 'kubently-storage' AND query = $1`,
              [`LISTEN ${quoteIdent(ch)}`],
            )
          ).map((r) => r.pid);
        try {
          const before = await listenerPids();
          expect(before).toHaveLength(1);
          const [{ killed }] = (await sql.query('SELECT pg_terminate_backend($1) AS killed', [
            before[0],
          ])) as [{ killed: boolean }];
          expect(killed).toBe(true);

          await vi.waitFor(() => expect(heard.reconnects).toBeGreaterThanOrEqual(1), SOON);
          const after = await listenerPids();
          expect(after.filter((pid) => pid !== before[0])).toHaveLength(1);

          await sql.query('SELECT pg_notify($1, $2)', [ch, 'after reconnect']);
          await vi.waitFor(() => expect(heard.payloads).toContain('after reconnect'), SOON);
          // Pooled statements still work too.
          expect(await own.query('SELECT 1::int4 AS one')).toStrictEqual([{ one: 1 }]);
        } finally {
          await stop();
          await own.close();
        }
      });

      it('fails with a retryable BackendUnavailableError when Postgres is not listening', async () => {
        // A refusal must be seen as such, not waited out: a 60 s connect timeout would exceed the test's.
        const closed = withErrorMapping(await open({ url: CLOSED_URL, connectTimeout: 60 }), 'kubently');
        try {
          for (const attempt of [
            () => closed.query('SELECT 1'),
            () => closed.script('SELECT 1'),
            () => closed.transaction((tx) => tx.query('SELECT 1')),
            () => closed.listen!(channel('closed'), recorder().listener),
          ]) {
            const error = await attempt().then(
              () => undefined,
              (e: unknown) => e,
            );
            expect(error).toBeInstanceOf(BackendUnavailableError);
            expect((error as BackendUnavailableError).retryable).toBe(true);
            expect((error as Error).message).toMatch(/^postgresql unavailable: /);
          }
        } finally {
          await closed.close();
        }
      });
    }

    if (driver === 'neon') {
      it('fails with a retryable BackendUnavailableError when the WebSocket proxy is not listening', async () => {
        const noProxy = withErrorMapping(
          await open({ wsProxy: '127.0.0.1:1/v1', connectTimeout: 60 }),
          'kubently',
        );
        try {
          const error = await noProxy.query('SELECT 1').catch((e: unknown) => e);
          expect(error).toBeInstanceOf(BackendUnavailableError);
          expect((error as BackendUnavailableError).retryable).toBe(true);
          expect((error as Error).message).toMatch(/ECONNREFUSED/);
        } finally {
          await noProxy.close();
        }
      });

      it('keeps the proxy settings of each Sql apart (no global neonConfig)', async () => {
        const good = await open();
        const bad = await open({ wsProxy: '127.0.0.1:1/v1' });
        try {
          // `good` opens its first connection only now, after `bad` was configured.
          expect(await good.query('SELECT 2::int4 AS two')).toStrictEqual([{ two: 2 }]);
          await expect(bad.query('SELECT 1')).rejects.toBeDefined();
        } finally {
          await good.close();
          await bad.close();
        }
      });
    }

    it('withErrorMapping: a missing table says to run migrations, not "does not exist"', async () => {
      const schema = `seam_missing_${run}`;
      const mapped = withErrorMapping(sql, schema);
      const missing = `${quoteIdent(schema)}.${quoteIdent('nothing_here')}`;
      const localMissing = quoteIdent(`${table}_missing`);
      for (const attempt of [
        () => mapped.query(`SELECT * FROM ${missing}`),
        () => mapped.query(`SELECT * FROM ${localMissing} WHERE id = $1`, [1]),
        () => mapped.script(`SELECT 1; SELECT * FROM ${missing}`),
        () => mapped.transaction((tx) => tx.query(`INSERT INTO ${missing} VALUES (1)`)),
        () => mapped.query(`SELECT no_such_column FROM ${T}`),
      ]) {
        const error = await attempt().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(BackendUnavailableError);
        const message = (error as Error).message;
        expect(message).toContain('run migrations');
        expect(message).toContain(schema);
        expect(message).not.toContain('does not exist');
        expect((error as BackendUnavailableError).retryable).toBe(false);
      }
      // Errors thrown by the body are not the driver's: they pass through unchanged.
      const own = new Error('not a database error');
      await expect(mapped.transaction(async () => Promise.reject(own))).rejects.toBe(own);
      expect(await mapped.query('SELECT 3::int4 AS three')).toStrictEqual([{ three: 3 }]);
    });

    it('has no listen when the configuration turns it off', async () => {
      const quiet = await open({ listen: false });
      try {
        expect(quiet.listen).toBeUndefined();
        expect(withErrorMapping(quiet, 'kubently').listen).toBeUndefined();
        expect(await quiet.query('SELECT 4::int4 AS four')).toStrictEqual([{ four: 4 }]);
      } finally {
        await quiet.close();
      }
      expect(sql.listen).toBeTypeOf('function');
    });
  });
}

describe('mapSqlError', () => {
  const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

  it('maps socket errors (EPIPE, ECONNRESET…) to retryable BackendUnavailableError, never as a SQLSTATE', () => {
    for (const code of ['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT']) {
      const mapped = mapSqlError(withCode(`write ${code}`, code));
      expect(mapped).toBeInstanceOf(BackendUnavailableError);
      expect((mapped as BackendUnavailableError).retryable).toBe(true);
      expect((mapped as Error).message).not.toContain('SQLSTATE');
    }
  });

  it('maps a WebSocket error event (what the Neon driver rejects with) to a retryable BackendUnavailableError', () => {
    const cause = withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED');
    const event = { type: 'error', error: cause, message: cause.message, target: {} };
    const mapped = mapSqlError(event);
    expect(mapped).toBeInstanceOf(BackendUnavailableError);
    expect((mapped as BackendUnavailableError).retryable).toBe(true);
    expect((mapped as Error).message).toContain('ECONNREFUSED');
    expect((mapped as Error).cause).toBe(cause);
  });

  it('maps SQLSTATEs by class: retryable, missing schema, refusal', () => {
    for (const state of ['40001', '40P01', '57P01', '08006', '53300', '55P03', '57014']) {
      expect(mapSqlError(withCode('x', state))).toMatchObject({ retryable: true });
    }
    for (const state of ['23505', '22012', '42501', '25P02']) {
      expect(mapSqlError(withCode('x', state))).toMatchObject({ retryable: false });
    }
    const missing = mapSqlError(withCode('relation "kubently.kv" does not exist', '42P01'), 'kubently');
    expect(missing).toBeInstanceOf(BackendUnavailableError);
    expect((missing as Error).message).toContain('run migrations');
    expect((missing as Error).message).not.toContain('does not exist');
  });

  it("leaves typed storage errors and errors that are not the database's alone", () => {
    const typed = new BackendUnavailableError('postgresql', 'already typed', { retryable: false });
    expect(mapSqlError(typed)).toBe(typed);
    const plain = new Error('a bug in the caller');
    expect(mapSqlError(plain)).toBe(plain);
    expect(mapSqlError('a string')).toBe('a string');
  });
});

describe('local/neon-proxy.ts', () => {
  let echo: Server;
  let echoPort: number;
  /** The echo server's open connections. */
  const echoSockets = new Set<Socket>();
  let proxy: NeonProxy;

  beforeAll(async () => {
    echo = createServer((socket) => {
      echoSockets.add(socket);
      socket.on('close', () => echoSockets.delete(socket));
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    echoPort = (echo.address() as { port: number }).port;
    proxy = await startNeonProxy();
  });
  afterAll(async () => {
    await proxy?.close();
    for (const socket of echoSockets) socket.destroy();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  /** Opens `ws://<proxy>?address=…` the way the Neon driver does; resolves once open. */
  function connectThrough(wsProxy: string, address: string): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${wsProxy}?address=${address}`);
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_request, response) => {
        reject(new Error(`HTTP ${response.statusCode}`));
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }
  /** Collects every binary frame until `total` bytes have arrived. */
  function receive(ws: WebSocket, total: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let length = 0;
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary) return reject(new Error('text frame'));
        chunks.push(data);
        length += data.length;
        if (length >= total) resolve(Buffer.concat(chunks));
      });
      ws.once('close', () => reject(new Error(`closed after ${length} of ${total} bytes`)));
    });
  }
  const closed = (ws: WebSocket) =>
    new Promise<number>((resolve) => {
      if (ws.readyState === ws.CLOSED) resolve(-1);
      else ws.once('close', (code) => resolve(code));
    });

  it('answers wsProxy as host:port/v1', () => {
    expect(proxy.wsProxy).toBe(`127.0.0.1:${proxy.port}/v1`);
    expect(proxy.port).toBeGreaterThan(0);
  });

  it('pipes binary frames both ways, many megabytes included', async () => {
    const ws = await connectThrough(proxy.wsProxy, `127.0.0.1:${echoPort}`);
    try {
      const small = Buffer.from([0, 1, 2, 255, 0x51]);
      const big = randomBytes(8 * 1024 * 1024);
      const answer = receive(ws, small.length + big.length);
      ws.send(small);
      ws.send(big);
      expect((await answer).equals(Buffer.concat([small, big]))).toBe(true);
    } finally {
      ws.terminate();
    }
  });

  it('refuses targets outside allowedHosts, malformed addresses and other paths', async () => {
    await expect(connectThrough(proxy.wsProxy, `10.255.255.1:${echoPort}`)).rejects.toThrow('HTTP 403');
    await expect(connectThrough(proxy.wsProxy, `example.com:5432`)).rejects.toThrow('HTTP 403');
    await expect(connectThrough(proxy.wsProxy, `127.0.0.1`)).rejects.toThrow('HTTP 400');
    await expect(connectThrough(proxy.wsProxy, `127.0.0.1:99999`)).rejects.toThrow('HTTP 400');
    await expect(connectThrough(`127.0.0.1:${proxy.port}/v2`, `127.0.0.1:${echoPort}`)).rejects.toThrow(
      'HTTP 404',
    );

    const narrow = await startNeonProxy({ allowedHosts: ['localhost'] });
    try {
      await expect(connectThrough(narrow.wsProxy, `127.0.0.1:${echoPort}`)).rejects.toThrow('HTTP 403');
      const ws = await connectThrough(narrow.wsProxy, `localhost:${echoPort}`);
      ws.terminate();
    } finally {
      await narrow.close();
    }
  });

  it('closes the WebSocket when the target refuses or ends the connection', async () => {
    const refused = await connectThrough(proxy.wsProxy, '127.0.0.1:1');
    expect(await closed(refused)).toBe(1011);

    const ws = await connectThrough(proxy.wsProxy, `127.0.0.1:${echoPort}`);
    const ping = receive(ws, 4);
    ws.send(Buffer.from('ping'));
    await ping;
    const code = closed(ws);
    for (const socket of echoSockets) socket.end();
    expect(await code).toBe(1000);
  });

  it('close() ends open connections and stops listening', async () => {
    const own = await startNeonProxy();
    const ws = await connectThrough(own.wsProxy, `127.0.0.1:${echoPort}`);
    const code = closed(ws);
    await own.close();
    await code;
    expect(ws.readyState).toBe(ws.CLOSED);
    await expect(connectThrough(own.wsProxy, `127.0.0.1:${echoPort}`)).rejects.toThrow(/ECONNREFUSED/);
  });
});
