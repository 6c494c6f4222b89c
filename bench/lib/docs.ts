/**
 * The numbers of docs/benchmarks.md: summary tables rendered from a results file, so the page
 * never holds a number that no run wrote. The full report of the same run is `<name>.md`.
 */
import {
  COLD_REQUEST_NOTE,
  coldRequestTable,
  migrateTables,
  noise,
  peersTables,
  scaleTables,
  statementsTable,
  targetsTable,
  warmHandlerTable,
} from './report.js';
import type { BenchResults } from './results.js';
import { int, kb, ms, ratio, table } from './table.js';
import { evaluateTargets, find, overhead, RAW_OF } from './targets.js';

const R = 'right' as const;
const L = 'left' as const;

/** The library's backends in the order they were measured (raw drivers and peers left out). */
function libraryBackends(results: BenchResults): string[] {
  const raw = new Set(Object.values(RAW_OF));
  return [...new Set(results.latency.map((r) => r.backend))].filter((b) => !raw.has(b));
}

const opsOf = (results: BenchResults) => [...new Set(results.latency.map((r) => r.op))];

function runLine(results: BenchResults, what: string): string {
  const m = results.meta;
  const v = m.versions;
  return [
    `${what}: ${m.mode} run of ${m.date.slice(0, 16).replace('T', ' ')} UTC, ${m.durationSeconds} s,`,
    `on ${m.machine.cpu} (${m.machine.cores} cores, ${m.machine.memoryGiB} GiB, ${m.machine.os}, load average ${m.machine.load.join(' ')} at the start);`,
    `Node ${v.node}, Redis ${v.redis ?? '?'}, PostgreSQL ${v.postgresql ?? '?'}, ioredis ${v.ioredis}, pg ${v.pg}, @neondatabase/serverless ${v['@neondatabase/serverless']};`,
    `${m.reps} repetition(s) of ${m.budget.warmup} warm-up calls then up to ${int(m.budget.iterations)} calls or ${m.budget.maxMs} ms, medians reported; ${m.pinned}.`,
  ].join('\n');
}

function sequentialTable(results: BenchResults): string {
  const backends = libraryBackends(results);
  return table(
    ['p50 ms (sequential)', ...backends],
    opsOf(results).map((op) => [op, ...backends.map((b) => ms(find(results.latency, b, op, 1)?.p50))]),
    [L, ...backends.map(() => R)],
  );
}

function concurrentTable(results: BenchResults): string {
  const backends = libraryBackends(results);
  return table(
    ['c8: p99 ms / ops/s', ...backends],
    opsOf(results).map((op) => [
      op,
      ...backends.map((b) => {
        const row = find(results.latency, b, op, 8);
        return row ? `${ms(row.p99)} / ${int(row.opsPerSec)}` : '—';
      }),
    ]),
    [L, ...backends.map(() => R)],
  );
}

function rawTable(results: BenchResults): string {
  const pairs = Object.entries(RAW_OF).filter(([, raw]) => results.latency.some((r) => r.backend === raw));
  return table(
    ['raw p50 ms → library / raw', ...pairs.map(([, raw]) => raw)],
    opsOf(results).map((op) => [
      op,
      ...pairs.map(([backend, raw]) => {
        const row = find(results.latency, raw, op, 1);
        return row ? `${ms(row.p50)} → ${ratio(overhead(results, backend, op))}` : '—';
      }),
    ]),
    [L, ...pairs.map(() => R)],
  );
}

/** Per package: the range of bundle sizes, and the kv handler's cold import. */
function lambdaSummary(results: BenchResults): string {
  const fns = results.lambda?.functions ?? [];
  const packages = [...new Set(fns.map((f) => f.package))];
  return table(
    ['package', 'bundles (.mjs)', 'kv cold import ms (without source maps)', 'cold process ms'],
    packages.map((p) => {
      const mine = fns.filter((f) => f.package === p);
      const sizes = mine.map((f) => f.bundleBytes);
      const processMs = mine.map((f) => f.coldProcessMs);
      const kv = mine.find((f) => f.name === 'kv');
      return [
        p,
        `${kb(Math.min(...sizes))}–${kb(Math.max(...sizes))}`,
        kv ? `${ms(kv.coldImportMs)} (${ms(kv.coldImportNoMapsMs)})` : '—',
        `${ms(Math.min(...processMs))}–${ms(Math.max(...processMs))}`,
      ];
    }),
    [L, R, R, R],
  );
}

/**
 * The rendered part of docs/benchmarks.md. `results` is a full run; `migration` and `coldRequest`,
 * when given, are the runs whose data-migration and cold-request numbers are shown (a run of that
 * suite alone, when the full run has none).
 */
export function renderBenchmarksBlock(
  results: BenchResults,
  files: { results: string; migration?: string; coldRequest?: string },
  migration?: BenchResults,
  coldRequest?: BenchResults,
): string {
  const migrated = results.migrate ? results : migration;
  const cold = results.coldRequest ? results : coldRequest;
  const n = noise(results);
  const sections = [
    runLine(results, `From \`${files.results}\``),
    '#### Hot operations',
    sequentialTable(results),
    'With 8 concurrent callers on one storage:',
    concurrentTable(results),
    "The raw drivers' p50 for the same round trips, and the library over the raw driver (median of the per-repetition ratios):",
    rawTable(results),
    statementsTable(results)
      ? `What each PostgreSQL call sends, counted at the client (a statement outside a transaction is one commit; an asynchronous one does not wait for the disk, see \`postgresql.leaseCommit\`):\n\n${statementsTable(results)}`
      : '',
    '#### Peers',
    peersTables(results),
    '#### How cost grows',
    scaleTables(results) || 'Not measured in this run.',
    '#### Lambda',
    results.lambda ? lambdaSummary(results) : 'Not measured in this run.',
    results.lambda ? warmHandlerTable(results) : '',
    '#### Cold first request',
    cold?.coldRequest
      ? [
          cold === results ? '' : `${runLine(cold, `From \`${files.coldRequest}\``)}\n`,
          COLD_REQUEST_NOTE,
          '',
          coldRequestTable(cold),
        ].join('\n')
      : 'Not measured: `npm run bench -- --only cold-request` measures it.',
    '#### Data migration',
    migrated?.migrate
      ? [
          migrated === results ? '' : `${runLine(migrated, `From \`${files.migration}\``)}\n`,
          `Redis (this project's layout) → PostgreSQL; validate ${migrated.migrate.validated ? 'found every store equal' : 'found DIFFERENCES'}.`,
          '',
          migrateTables(migrated),
        ].join('\n')
      : 'Not measured: `npm run bench -- --only migrate` measures it.',
    '#### Targets',
    // Judged again, with the migration and cold-request runs' numbers where the full run has none.
    targetsTable({
      ...results,
      targets: evaluateTargets({ ...results, migrate: migrated?.migrate, coldRequest: cold?.coldRequest }),
    }),
    '#### Noise in this run',
    n
      ? `Across repetitions, the largest p50 over the smallest was ${ratio(n.median)} for the median row and ${ratio(n.worst)} at worst (${n.worstRow}).`
      : 'One repetition per measurement: no spread to report.',
    ...results.meta.notes.map((note) => `- ${note}`),
  ];
  return sections.filter((s) => s !== '').join('\n\n');
}
