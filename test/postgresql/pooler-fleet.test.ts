/**
 * 200 simulated Lambda containers (a Storage each, pools of one or two connections) share one
 * PgBouncer in transaction mode with 20 server connections: no call fails, the data adds up,
 * and PgBouncer never holds more server connections than its pool. The short version of
 * `npm run reliability -- pooler` (bench/reliability), which prints latencies.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFleet } from '../../bench/reliability/fleet.js';
import { resolveConfig } from '../../lib/config/index.js';
import { createSql, quoteIdent } from '../../lib/storage/postgresql/sql.js';
import { postgresBackend, testDatabaseUrl } from '../support/backends.js';
import { type PgBouncer, pgbouncerUnavailable, startPgBouncer } from '../support/servers/pgbouncer.js';

const unavailable =
  pgbouncerUnavailable() ?? (await postgresBackend({ name: 'postgresql-pg', driver: 'pg' }).available());
if (unavailable && process.env.CI)
  throw new Error(`PgBouncer and PostgreSQL are required under CI: ${unavailable}`);
if (unavailable) console.warn(`\n⚠ test/postgresql/pooler-fleet SKIPPED: ${unavailable}\n`);

const POOL = 20;

describe.skipIf(unavailable !== undefined)(
  `Lambda containers behind PgBouncer (transaction mode, pool ${POOL})${unavailable ? ` — SKIPPED: ${unavailable}` : ''}`,
  () => {
    let bouncer: PgBouncer;
    const schema = `kst_fleet_${randomBytes(4).toString('hex')}`;

    beforeAll(async () => {
      bouncer = await startPgBouncer({ target: testDatabaseUrl(), poolSize: POOL });
    });
    afterAll(async () => {
      await bouncer?.stop();
      const admin = await createSql(
        resolveConfig({ postgresql: { url: testDatabaseUrl(), listen: false } }).postgresql,
      );
      try {
        await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
      } finally {
        await admin.close();
      }
    });

    it('200 containers, mixed kv/sessions/queues/events: 0 errors, data adds up, servers ≤ pool', async () => {
      const report = await runFleet({
        url: bouncer.url,
        schema,
        containers: 200,
        invocations: 3,
        sampleServers: () => bouncer.serverUse(),
      });
      console.log(
        `fleet: ${report.operations} calls in ${Math.round(report.durationMs)} ms, p50 ${report.latency.p50.toFixed(1)} ms, ` +
          `p99 ${report.latency.p99.toFixed(1)} ms, at most ${report.maxServers} server connections, ${report.maxWaiting} clients waiting`,
      );
      expect(report.errorSamples).toEqual([]);
      expect(report.errors).toBe(0);
      expect(report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(report.samples).toBeGreaterThan(0);
      expect(report.maxServers).toBeGreaterThan(0);
      expect(report.maxServers).toBeLessThanOrEqual(POOL);
    });
  },
);
