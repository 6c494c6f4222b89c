/**
 * Deadlocks are counted where PostgreSQL errors are mapped: a real deadlock between two
 * transactions on the local server aborts one with SQLSTATE 40P01, which reaches the caller as a
 * retryable `BackendUnavailableError` and the metrics sink as one `Deadlocks` (backend
 * postgresql); other errors are not counted, and a storage passes its sink down to the driver.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../lib/config/index.js';
import { BackendUnavailableError } from '../../lib/errors.js';
import type { StorageMetric } from '../../lib/metrics.js';
import { createStorage } from '../../lib/storage/index.js';
import { createSql, type Sql, type SqlExecutor, withErrorMapping } from '../../lib/storage/postgresql/sql.js';
import { postgresBackend, testDatabaseUrl } from '../support/backends.js';

const unavailable = await postgresBackend({ name: 'postgresql-pg', driver: 'pg' }).available();
if (unavailable && process.env.CI) throw new Error(`PostgreSQL is required under CI: ${unavailable}`);

const schema = `kst_deadlock_${randomBytes(3).toString('hex')}`;
const config = {
  ...resolveConfig({}).postgresql,
  driver: 'pg' as const,
  url: testDatabaseUrl(),
  listen: false,
  poolSize: 2,
};
let raw: Sql | undefined;

afterAll(async () => {
  await raw?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await raw?.close();
});

/** Resolves after `ms`. */
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(unavailable !== undefined)('deadlocks', () => {
  it('a real deadlock is a retryable unavailable error and counted once, as Deadlocks on postgresql', async () => {
    raw = await createSql(config);
    await raw.query(`CREATE SCHEMA "${schema}"`);
    await raw.query(`CREATE TABLE "${schema}".rows (id int PRIMARY KEY, n int)`);
    await raw.query(`INSERT INTO "${schema}".rows VALUES (1, 0), (2, 0)`);
    const metrics: StorageMetric[] = [];
    const sql = withErrorMapping(raw, schema, (metric) => metrics.push(metric));

    // Each locks one row, waits until the other has locked its row, then wants the other's.
    let locked = 0;
    const bothLocked = async () => {
      locked += 1;
      while (locked < 2) await pause(10);
    };
    const crossing = (first: number, second: number) =>
      sql.transaction(async (tx: SqlExecutor) => {
        await tx.query(`UPDATE "${schema}".rows SET n = n + 1 WHERE id = $1`, [first]);
        await bothLocked();
        await tx.query(`UPDATE "${schema}".rows SET n = n + 1 WHERE id = $1`, [second]);
      });
    const outcomes = await Promise.allSettled([crossing(1, 2), crossing(2, 1)]);

    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(failed).toHaveLength(1);
    const error = failed[0]!.reason;
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect(error).toMatchObject({ retryable: true, message: expect.stringContaining('SQLSTATE 40P01') });
    expect(metrics).toEqual([
      { name: 'Deadlocks', value: 1, unit: 'Count', dimensions: { backend: 'postgresql' } },
    ]);

    // Other refusals are mapped as before and not counted.
    await expect(sql.query(`SELECT * FROM "${schema}".missing`)).rejects.toBeInstanceOf(
      BackendUnavailableError,
    );
    await expect(sql.query('SELECT 1/0')).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(metrics).toHaveLength(1);
  });

  it('a storage passes its metrics sink to the PostgreSQL driver', async () => {
    const metrics: StorageMetric[] = [];
    // A connection that answers every statement with a deadlock, as a busy database might.
    const deadlocked: Sql = {
      driver: 'pg',
      query: async () => {
        throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
      },
      script: async () => {},
      transaction: async (fn) => fn(deadlocked),
      close: async () => {},
    };
    const storage = createStorage(
      { backend: 'postgresql', postgresql: { ...config, schema } },
      { metrics: (metric) => metrics.push(metric), postgresql: { sql: deadlocked } },
    );
    await expect(storage.kv.get('k')).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(metrics.map((m) => [m.name, m.dimensions])).toContainEqual([
      'Deadlocks',
      { backend: 'postgresql' },
    ]);
    await storage.close();
  });
});
