/**
 * The targets the suite is designed toward, judged against one run's numbers. Each is reported
 * as met, missed or not measured; none of them ever fails a run.
 */
import { type Measured, median } from './measure.js';
import type { BenchResults, LatencyRow, TargetRow } from './results.js';
import { int, kb, ms, ratio } from './table.js';

/** The library backend each raw baseline stands beside. */
export const RAW_OF: Record<string, string> = {
  redis: 'ioredis (raw)',
  'postgresql (pg)': 'pg (raw)',
  'postgresql (neon)': 'neon (raw)',
};

export function find(
  rows: LatencyRow[],
  backend: string,
  op: string,
  concurrency = 1,
): LatencyRow | undefined {
  return rows.find((r) => r.backend === backend && r.op === op && r.concurrency === concurrency);
}

/**
 * `a[field] / b[field]` as the median of the per-repetition ratios when both rows have the same
 * repetitions (they were timed together, call by call), else the ratio of the medians. Pairing
 * matters here: a connection whose server process runs on the client's core answers in a
 * fraction of the time of one across cores, so one repetition can shift both sides alike, or one
 * side only when the two use different connections; the median ratio drops such a repetition.
 */
export function pairedRatio(a: Measured, b: Measured, field: 'p50' | 'opsPerSec'): number {
  if (a.reps.length > 0 && a.reps.length === b.reps.length) {
    return median(a.reps.map((rep, i) => rep[field] / b.reps[i]![field]));
  }
  return a[field] / b[field];
}

/** Library p50 over raw-driver p50 for one op (paired per repetition), or undefined when either was not measured. */
export function overhead(
  results: BenchResults,
  backend: string,
  op: string,
  concurrency = 1,
): number | undefined {
  const lib = find(results.latency, backend, op, concurrency);
  const raw = find(results.latency, RAW_OF[backend] ?? '', op, concurrency);
  return lib && raw ? pairedRatio(lib, raw, 'p50') : undefined;
}

const PG_LATENCY: [op: string, limitMs: number][] = [
  ['kv.get', 0.25],
  ['kv.set', 0.5],
  ['session create', 1],
  ['queue pop', 0.6],
  ['pub/sub', 0.5],
];

export function evaluateTargets(results: BenchResults): TargetRow[] {
  const out: TargetRow[] = [];
  const ops = [...new Set(results.latency.map((r) => r.op))];

  for (const backend of Object.keys(RAW_OF)) {
    const ratios = ops
      .map((op) => [op, overhead(results, backend, op)] as const)
      .filter((entry): entry is readonly [string, number] => entry[1] !== undefined);
    const worst = ratios.filter(([, r]) => r > 1.1).map(([op]) => op);
    out.push({
      name: `library vs raw driver, ${backend}`,
      target: '≤ 1.10× per op (p50, sequential)',
      actual: ratios.length === 0 ? 'not measured' : ratios.map(([op, r]) => `${op} ${ratio(r)}`).join(', '),
      met: ratios.length === 0 ? undefined : worst.length === 0,
      ...(worst.length > 0 ? { note: `over: ${worst.join(', ')}` } : {}),
    });
  }

  for (const [op, limit] of PG_LATENCY) {
    const row = find(results.latency, 'postgresql (pg)', op);
    out.push({
      name: `PostgreSQL (pg) p50 ${op}`,
      target: `≤ ${limit} ms`,
      actual: row ? `${ms(row.p50)} ms` : 'not measured',
      met: row ? row.p50 <= limit : undefined,
    });
  }

  const queue = (system: string) => results.peers.queue.find((r) => r.system === system);
  const queueTarget = (name: string, ours: string, peer: string, factor: number) => {
    const a = queue(ours);
    const b = queue(peer);
    const r = a && b ? a.jobsPerSec / b.jobsPerSec : undefined;
    out.push({
      name,
      target: `≥ ${factor}× ${peer} (jobs/s, ${a?.consumers ?? 8} consumers)`,
      actual: a && b ? `${int(a.jobsPerSec)} vs ${int(b.jobsPerSec)} jobs/s = ${ratio(r)}` : 'not measured',
      met: r === undefined ? undefined : r >= factor,
    });
  };
  queueTarget(
    'PostgreSQL queue vs pg-boss',
    'kubently (postgresql, batches of 50)',
    'pg-boss (batches of 50)',
    2,
  );
  queueTarget('PostgreSQL queue vs graphile-worker', 'kubently (postgresql)', 'graphile-worker', 1);
  queueTarget('Redis queue vs BullMQ', 'kubently (redis)', 'BullMQ', 1);

  const kvTarget = (ours: string, peer: string, factor: number) => {
    const pairs = (['kv.get', 'kv.set'] as const).flatMap((op) =>
      [1, 8].map((c) => {
        const a = find(results.peers.kv, ours, op, c);
        const b = find(results.peers.kv, peer, op, c);
        return a && b ? ([`${op} c${c}` as string, pairedRatio(a, b, 'opsPerSec')] as const) : undefined;
      }),
    );
    const got = pairs.filter((p): p is readonly [string, number] => p !== undefined);
    const low = got.filter(([, r]) => r < factor).map(([label]) => label);
    out.push({
      name: `kv: ${ours} vs ${peer}`,
      target: `≥ ${factor}× (ops/s)`,
      actual: got.length === 0 ? 'not measured' : got.map(([label, r]) => `${label} ${ratio(r)}`).join(', '),
      met: got.length === 0 ? undefined : low.length === 0,
      ...(low.length > 0 ? { note: `under: ${low.join(', ')}` } : {}),
    });
  };
  kvTarget('kubently (redis)', '@keyv/redis', 1.2);
  kvTarget('kubently (postgresql)', '@keyv/postgres', 1.5);

  const warm = results.lambda?.warm ?? [];
  out.push({
    name: 'warm handler overhead',
    target: '≤ 0.15 ms (p50, handler minus store op)',
    actual:
      warm.length === 0 ? 'not measured' : warm.map((w) => `${w.route} ${ms(w.overheadP50)} ms`).join(', '),
    met: warm.length === 0 ? undefined : warm.every((w) => w.overheadP50 <= 0.15),
  });

  const fns = results.lambda?.functions ?? [];
  const packages = [...new Set(fns.map((f) => f.package))];
  const largest = packages.map((p) => {
    const mine = fns.filter((f) => f.package === p);
    return [p, Math.max(...mine.map((f) => f.bundleBytes))] as const;
  });
  const over = largest.filter(([, bytes]) => bytes > 400_000).map(([p]) => p);
  out.push({
    name: 'bundle size per function',
    target: '≤ 400 KB without the AWS SDK',
    actual:
      fns.length === 0
        ? 'not measured'
        : `largest: ${largest.map(([p, bytes]) => `${p} ${kb(bytes)}`).join(', ')}`,
    met: fns.length === 0 ? undefined : over.length === 0,
    ...(over.length > 0 ? { note: `over: ${over.join(', ')}` } : {}),
  });

  out.push(coldImportTarget(results));

  const migrate = results.migrate;
  const copied = migrate?.rows.find((r) => r.run === 'copy');
  const unverified = migrate?.rows.find((r) => r.run === 'copy (verify: false)');
  out.push({
    name: 'migration copy',
    target: '≥ 20,000 items/s (Redis → PostgreSQL, verification on)',
    actual:
      migrate && copied
        ? `${int(copied.itemsPerSec)} items/s (verify: false ${int(unverified?.itemsPerSec)}); kv ${ratio(migrate.kvVsRaw.verify)} the raw drivers`
        : 'not measured',
    met: copied ? copied.itemsPerSec >= 20_000 : undefined,
    ...(migrate && !migrate.validated ? { note: 'validate found differences' } : {}),
  });
  const hostile = results.glob?.filter((r) => r.matcher === 'lib/glob' && r.case.startsWith('hostile'));
  const slowest = hostile && hostile.length > 0 ? Math.max(...hostile.map((r) => r.p99)) : undefined;
  out.push({
    name: 'resource glob, hostile pattern on a 255-byte name',
    target: '≤ 0.01 ms per match (p99)',
    actual: slowest === undefined ? 'not measured' : `${slowest.toFixed(5)} ms`,
    met: slowest === undefined ? undefined : slowest <= 0.01,
  });
  const cli = results.cli;
  out.push({
    name: 'CLI start',
    target: '≤ 150 ms (`kubently-storage migrate --help`, spawn to exit, p50)',
    actual: cli ? `${int(cli.p50Ms)} ms (node -e 0: ${int(cli.nodeP50Ms)} ms)` : 'not measured',
    met: cli ? cli.p50Ms <= 150 : undefined,
  });
  return out;
}

/**
 * Every function's cold `import()` on the pg package: the lambda suite's (every function), or,
 * in a run without it, the cold-request suite's (the functions it invokes).
 */
function coldImportTarget(results: BenchResults): TargetRow {
  const PACKAGE = 'postgresql (pg)';
  const LIMIT_MS = 35;
  const fromLambda = (results.lambda?.functions ?? [])
    .filter((f) => f.package === PACKAGE)
    .map((f) => [f.name, f.coldImportMs] as const);
  const imports =
    fromLambda.length > 0
      ? fromLambda
      : (results.coldRequest ?? [])
          .filter((r) => r.package === PACKAGE)
          .map((r) => [r.function, r.importMs] as const);
  const target = `≤ ${LIMIT_MS} ms per function (\`import()\` in a fresh process, pg package)`;
  if (imports.length === 0) return { name: 'cold import', target, actual: 'not measured', met: undefined };
  const slowest = imports.reduce((a, b) => (b[1] > a[1] ? b : a));
  const over = imports.filter(([, importMs]) => importMs > LIMIT_MS).map(([name]) => name);
  return {
    name: 'cold import',
    target,
    actual: `slowest: ${slowest[0]} ${ms(slowest[1])} ms${fromLambda.length > 0 ? '' : ' (cold-request suite)'}`,
    met: over.length === 0,
    ...(over.length > 0 ? { note: `over: ${over.join(', ')}` } : {}),
  };
}
