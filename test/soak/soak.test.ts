/**
 * The bounded load run (`npm run soak`, bench/soak/soak.ts) for one minute per backend, both at
 * once, each on its own `npm start`: the test holds the run to its own verdict (no 5xx, nothing
 * lost or doubled, connections within what the Lambda instances can hold) and prints the
 * latency table. Timings are printed, never asserted.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { render } from '../../bench/soak/report.js';
import { runSoak, type SoakBackend } from '../../bench/soak/soak.js';
import { postgresBackend, redisBackend } from '../support/backends.js';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const MINUTES = 1;
/** Calls a second per backend; the two runs together make 50/s on the machine. */
const RATE = 25;
/** Start, warm-up, the minute, the drain: a ceiling, not an expectation. */
const TIMEOUT_MS = 240_000;

const unavailable =
  (await postgresBackend({ name: 'postgresql-pg', driver: 'pg' }).available()) ??
  (await redisBackend({ name: 'redis', url: REDIS_URL }).available());
if (unavailable !== undefined && !process.env.CI)
  console.warn(`\n⚠ bounded load run SKIPPED: ${unavailable}\n`);
const suite = unavailable === undefined || process.env.CI ? describe.concurrent : describe.skip;
const skipReason = unavailable === undefined || process.env.CI ? '' : ` — SKIPPED: ${unavailable}`;

suite(`bounded load run over npm start, ${MINUTES} min at ${RATE}/s${skipReason}`, () => {
  for (const backend of ['postgresql', 'redis'] as SoakBackend[]) {
    it(`${backend}: no 5xx, no queue message lost or doubled, every publish reaches every subscriber, connections bounded`, {
      timeout: TIMEOUT_MS,
    }, async () => {
      if (unavailable !== undefined) throw new Error(`a server is unavailable under CI: ${unavailable}`);
      const report = await runSoak({ backend, minutes: MINUTES, rate: RATE });
      console.log(render(report));
      const dir = join(import.meta.dirname, '../../.scratch');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `soak-test-${backend}.json`), `${JSON.stringify(report, null, 2)}\n`);

      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
      // The run did what it says: every scheduled call, every route of the mix, samples throughout.
      expect(report.scheduled).toBe(MINUTES * 60 * RATE);
      expect(
        report.routes
          .filter((r) => !r.route.includes('drain'))
          .map((r) => r.route)
          .sort(),
      ).toEqual([
        'channel publish',
        'kv delete',
        'kv get',
        'kv put',
        'queue ack',
        'queue receive',
        'queue send',
        'sessions create',
        'sessions get',
        'sessions keepalive',
        'tokens list',
      ]);
      expect(report.queue.sent).toBeGreaterThan(0);
      expect(report.delivery.expected).toBeGreaterThan(0);
      expect(report.samples.length).toBeGreaterThanOrEqual(10);
      expect(report.samples.every((s) => s.rssBytes > 0)).toBe(true);
      expect(Math.max(...report.samples.map((s) => Object.values(s.connections)[0] ?? 0))).toBeGreaterThan(0);
    });
  }
});
