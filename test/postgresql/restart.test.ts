/**
 * A private PostgreSQL (test/support/servers/postgres-cluster.ts, never the shared server) restarted with
 * a fast and then an immediate shutdown while containers write and enqueue: nothing acknowledged
 * is lost or doubled, and the same storages write again once it is back, without being told.
 * The short version of `npm run reliability -- pg-restart`, which prints the timings.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRestartScenario } from '../../bench/reliability/restart.js';
import {
  type PostgresCluster,
  postgresClusterUnavailable,
  startPostgresCluster,
} from '../support/servers/postgres-cluster.js';

const unavailable = postgresClusterUnavailable();
if (unavailable && process.env.CI)
  throw new Error(`a private PostgreSQL is required under CI: ${unavailable}`);
if (unavailable) console.warn(`\n⚠ test/postgresql/restart SKIPPED: ${unavailable}\n`);

describe.skipIf(unavailable !== undefined)(
  `PostgreSQL restarted under writes${unavailable ? ` — SKIPPED: ${unavailable}` : ''}`,
  () => {
    let cluster: PostgresCluster;
    beforeAll(async () => {
      cluster = await startPostgresCluster();
    });
    afterAll(async () => {
      await cluster?.destroy();
    });

    it('fast and immediate shutdown mid-write: 0 acknowledged writes lost, 0 duplicated, the pools recover', async () => {
      const report = await runRestartScenario({
        url: cluster.url,
        schema: 'kubently',
        server: cluster,
        modes: ['fast', 'immediate'],
        phaseMs: 1000,
        containers: 3,
      });
      console.log(
        `restart: kv ${report.kv.acknowledged} and queue ${report.queue.acknowledged} acknowledged, ${report.failedCalls} calls failed during the outages; ` +
          report.restarts
            .map(
              (r) =>
                `${r.mode}: writes again ${Math.round(r.recoveryMs)} ms after the start command, gap ${Math.round(r.gapMs)} ms`,
            )
            .join('; '),
      );
      expect(report.unexpectedErrors).toEqual([]);
      expect(report.kv.acknowledged).toBeGreaterThan(0);
      expect(report.queue.acknowledged).toBeGreaterThan(0);
      expect(report.kv.lost).toBe(0);
      expect(report.queue.lost).toBe(0);
      expect(report.queue.duplicated).toBe(0);
      // The restarts really interrupted writes, and each was followed by successful ones.
      expect(report.failedCalls).toBeGreaterThan(0);
      for (const restart of report.restarts)
        expect(Number.isFinite(restart.recoveryMs), restart.mode).toBe(true);
      expect(report.acknowledgedAfterLastRestart).toBeGreaterThan(0);
    });
  },
);
