/**
 * `npm run reliability -- <scenario> [options]`: the reliability scenarios at full size, with
 * their numbers printed (the test suite runs short versions and asserts only what must hold).
 *
 *   pooler      [--containers 200] [--invocations 30] [--pool 20] [--seed 1]
 *               Lambda containers (a Storage each, pools of 1–2) through a PgBouncer in
 *               transaction mode started for the run, in front of DATABASE_URL (default the
 *               local `test` database). See bench/reliability/fleet.ts.
 *   pg-restart  [--modes fast,immediate,fast,immediate] [--phase-ms 3000] [--containers 4]
 *               A private PostgreSQL restarted while containers write. See bench/reliability/restart.ts.
 *
 * Exits non-zero when a scenario's invariant fails (an error, a lost or doubled write, more
 * server connections than the pool); latencies and timings are reported, never judged.
 */
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { resolveConfig } from '../../lib/config/index.js';
import { createSql, quoteIdent } from '../../lib/storage/postgresql/sql.js';
import { testDatabaseUrl } from '../../test/support/backends.js';
import { startPgBouncer } from '../../test/support/servers/pgbouncer.js';
import { startPostgresCluster } from '../../test/support/servers/postgres-cluster.js';
import { int, ms, table } from '../lib/table.js';
import { runFleet } from './fleet.js';
import { runRestartScenario, type ShutdownMode } from './restart.js';

function option(args: string[], flag: string, fallback: string): string {
  const at = args.indexOf(flag);
  return at === -1 ? fallback : (args[at + 1] ?? fallback);
}
const number = (args: string[], flag: string, fallback: number) =>
  Number(option(args, flag, String(fallback)));

async function pooler(args: string[]): Promise<boolean> {
  const containers = number(args, '--containers', 200);
  const invocations = number(args, '--invocations', 30);
  const poolSize = number(args, '--pool', 20);
  const target = testDatabaseUrl();
  const schema = `kst_fleet_${randomBytes(4).toString('hex')}`;
  const bouncer = await startPgBouncer({ target, poolSize });
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${cpus().length} cores`,
  );
  console.log(
    `PgBouncer transaction mode, pool ${poolSize}, on 127.0.0.1:${bouncer.port} → ${new URL(target).host}; ` +
      `${containers} containers × ${invocations} invocations`,
  );
  try {
    const report = await runFleet({
      url: bouncer.url,
      schema,
      containers,
      invocations,
      seed: number(args, '--seed', 1),
      sampleServers: () => bouncer.serverUse(),
    });
    console.log(
      `\n${int(report.operations)} calls in ${ms(report.durationMs)} ms, ${report.errors} errors; ` +
        `server connections at most ${report.maxServers} (pool ${poolSize}, ${report.samples} samples), ` +
        `clients waiting at most ${report.maxWaiting}\n`,
    );
    const rows = report.latency.byOp.map((o) => [o.op, int(o.count), ms(o.p50), ms(o.p99)]);
    rows.push([
      'all',
      int(report.operations - report.errors),
      ms(report.latency.p50),
      ms(report.latency.p99),
    ]);
    console.log(table(['operation', 'calls', 'p50 ms', 'p99 ms'], rows, ['left', 'right', 'right', 'right']));
    console.log(
      `\n${table(
        ['check', 'expected', 'actual', 'ok'],
        report.checks.map((c) => [c.name, int(c.expected), int(c.actual), c.ok ? 'yes' : 'NO']),
        ['left', 'right', 'right', 'left'],
      )}`,
    );
    for (const sample of report.errorSamples) console.log(`error: ${sample}`);
    return report.errors === 0 && report.maxServers <= poolSize && report.checks.every((c) => c.ok);
  } finally {
    await bouncer.stop();
    const admin = await createSql(resolveConfig({ postgresql: { url: target, listen: false } }).postgresql);
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`).finally(() => admin.close());
  }
}

async function pgRestart(args: string[]): Promise<boolean> {
  const modes = option(args, '--modes', 'fast,immediate,fast,immediate').split(',') as ShutdownMode[];
  if (modes.some((m) => m !== 'fast' && m !== 'immediate'))
    throw new Error('--modes: fast or immediate, comma-separated');
  const cluster = await startPostgresCluster();
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${cpus().length} cores`,
  );
  console.log(`private PostgreSQL on 127.0.0.1:${cluster.port}; restarts: ${modes.join(', ')}`);
  try {
    const report = await runRestartScenario({
      url: cluster.url,
      schema: 'kubently',
      server: cluster,
      modes,
      phaseMs: number(args, '--phase-ms', 3000),
      containers: number(args, '--containers', 4),
    });
    console.log(
      `\n${table(
        ['store', 'acknowledged', 'lost', 'duplicated', 'unacknowledged but committed'],
        (['kv', 'queue'] as const).map((store) => {
          const t = report[store];
          return [store, int(t.acknowledged), int(t.lost), int(t.duplicated), int(t.unacknowledgedFound)];
        }),
        ['left', 'right', 'right', 'right', 'right'],
      )}\n`,
    );
    console.log(
      table(
        [
          'restart',
          'pg_ctl stop ms',
          'start → server answers ms',
          'start → first write ms',
          'gap callers saw ms',
        ],
        report.restarts.map((r, i) => [
          `${i + 1}: ${r.mode}`,
          ms(r.stopMs),
          ms(r.readyMs),
          ms(r.recoveryMs),
          ms(r.gapMs),
        ]),
        ['left', 'right', 'right', 'right', 'right'],
      ),
    );
    console.log(
      `\n${int(report.failedCalls)} calls failed (retryable) during the outages; ` +
        `${int(report.acknowledgedAfterLastRestart)} writes acknowledged after the last restart; ` +
        `${ms(report.durationMs)} ms in all`,
    );
    for (const error of report.unexpectedErrors) console.log(`unexpected: ${error}`);
    return (
      report.unexpectedErrors.length === 0 &&
      report.kv.lost === 0 &&
      report.queue.lost === 0 &&
      report.queue.duplicated === 0 &&
      report.acknowledgedAfterLastRestart > 0
    );
  } finally {
    await cluster.destroy();
  }
}

const SCENARIOS: Record<string, (args: string[]) => Promise<boolean>> = { pooler, 'pg-restart': pgRestart };

const [name, ...rest] = process.argv.slice(2);
const scenario = name === undefined ? undefined : SCENARIOS[name];
if (scenario === undefined) {
  console.error(
    `usage: npm run reliability -- <${Object.keys(SCENARIOS).join('|')}> [options] (see bench/reliability/run.ts)`,
  );
  process.exit(2);
}
const ok = await scenario(rest);
process.exit(ok ? 0 : 1);
