/**
 * `npm run bench [-- --quick] [--no-pin] [--only matrix,peers,scale,lambda,migrate,glob,cli,cold-request] [--backends redis,…] [--bundles DIR] [--out DIR]`
 * `npm run bench -- --render bench/results/latest.json` re-renders a run's report and chart.
 * A full run, or a run of the migrate or cold-request suite alone, into bench/results also renders
 * docs/benchmarks.md (bench/render-docs.ts).
 *
 * Runs the benchmark suites (bench/suites/*), then prints a table and writes, under `--out`
 * (default bench/results): `<name>.json` (every number), `<name>.md` (the report) and
 * `<name>.svg` (p50 per operation per backend, log scale), where name is `latest` for a full
 * run, `quick` for `--quick` and `only-<suites>` for `--only` (so a partial run never replaces a
 * full run's report). `--backends` narrows the matrix to some backends (the names in
 * bench/lib/context.ts, e.g. `redis`, `postgresql (pg)`) and requires `--only`. Targets are reported as met or missed; a missed target never
 * changes the exit status, only a crash does.
 *
 * The process re-executes itself under `taskset -c 0` (one core for the client side: less
 * scheduler noise on a busy machine) when taskset exists, unless `--no-pin`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import { join, resolve } from 'node:path';
import { BACKENDS, type BackendName, Context, type Options } from './lib/context.js';
import { renderMarkdown, renderTerminal } from './lib/report.js';
import type { BenchResults } from './lib/results.js';
import { renderSvg } from './lib/svg.js';
import { evaluateTargets } from './lib/targets.js';
import { RESULTS_DIR, updateBenchmarksDoc } from './render-docs.js';
import { cliSuite } from './suites/cli.js';
import { coldRequestSuite } from './suites/cold-request.js';
import { migrateSuite } from './suites/data-migration.js';
import { globSuite } from './suites/glob.js';
import { lambdaSuite } from './suites/lambda.js';
import { matrixSuite } from './suites/matrix.js';
import { peersSuite } from './suites/peers.js';
import { scaleSuite } from './suites/scale.js';

const SUITES: Record<string, (ctx: Context) => Promise<void>> = {
  matrix: matrixSuite,
  peers: peersSuite,
  scale: scaleSuite,
  lambda: lambdaSuite,
  migrate: migrateSuite,
  glob: globSuite,
  cli: cliSuite,
  'cold-request': coldRequestSuite,
};

function parseArgs(argv: string[]): Options & { pin: boolean } {
  const value = (flag: string) => {
    const at = argv.indexOf(flag);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const only = value('--only')?.split(',').filter(Boolean);
  const unknown = only?.filter((s) => !(s in SUITES));
  if (unknown && unknown.length > 0)
    throw new Error(
      `--only: unknown suites ${unknown.join(', ')} (known: ${Object.keys(SUITES).join(', ')})`,
    );
  const backends = value('--backends')
    ?.split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  const unknownBackends = backends?.filter((b) => !BACKENDS.includes(b as BackendName));
  if (unknownBackends && unknownBackends.length > 0)
    throw new Error(`--backends: unknown ${unknownBackends.join(', ')} (known: ${BACKENDS.join(', ')})`);
  // A run of some backends is a partial run: it must not write the full run's report.
  if (backends && !only) throw new Error('--backends narrows a partial run: give --only too');
  return {
    quick: argv.includes('--quick'),
    backends: backends as BackendName[] | undefined,
    pin: !argv.includes('--no-pin'),
    only,
    bundles: value('--bundles'),
    out: resolve(value('--out') ?? join(import.meta.dirname, 'results')),
  };
}

/** Re-runs this process under `taskset -c 0`; answers the pinning to report, or undefined when the child ran. */
function pin(wanted: boolean): string | undefined {
  if (process.env.KST_BENCH_PINNED) return process.env.KST_BENCH_PINNED;
  if (!wanted) return 'not pinned (--no-pin)';
  if (spawnSync('taskset', ['-c', '0', 'true']).status !== 0) return 'not pinned (taskset unavailable)';
  const child = spawnSync(
    'taskset',
    ['-c', '0', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
      env: {
        ...process.env,
        KST_BENCH_PINNED:
          'taskset -c 0 (the benchmark process and the children it starts; the servers are not pinned)',
      },
    },
  );
  process.exit(child.status ?? 1);
}

function versions(): Record<string, string> {
  const read = (name: string): string => {
    try {
      const file = join(import.meta.dirname, '..', 'node_modules', name, 'package.json');
      return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
    } catch {
      return '?';
    }
  };
  const out: Record<string, string> = { node: process.version };
  for (const name of [
    'ioredis',
    'pg',
    '@neondatabase/serverless',
    'keyv',
    '@keyv/redis',
    '@keyv/postgres',
    'bullmq',
    'pg-boss',
    'graphile-worker',
  ]) {
    out[name] = read(name);
  }
  return out;
}

/** `--render FILE`: the report, chart and table again from a results file (targets re-judged), nothing measured. */
function render(file: string): void {
  const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  results.targets = evaluateTargets(results);
  const base = file.replace(/\.json$/, '');
  const name = base.slice(base.lastIndexOf('/') + 1);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(`${base}.md`, renderMarkdown(results, `${name}.svg`));
  writeFileSync(`${base}.svg`, renderSvg(results));
  process.stdout.write(renderTerminal(results));
  renderDocs(file);
}

/** docs/benchmarks.md shows the full run and the migration and cold-request suites' own runs, when those are what was written. */
function renderDocs(written: string): void {
  const name = written.slice(written.lastIndexOf('/') + 1);
  if (
    resolve(written, '..') !== RESULTS_DIR ||
    !['latest.json', 'only-migrate.json', 'only-cold-request.json'].includes(name)
  )
    return;
  if (updateBenchmarksDoc()) process.stdout.write('updated docs/benchmarks.md\n');
}

async function main(): Promise<void> {
  const rendering = process.argv.indexOf('--render');
  if (rendering >= 0) return render(resolve(process.argv[rendering + 1] ?? 'bench/results/latest.json'));
  const options = parseArgs(process.argv.slice(2));
  const pinned = pin(options.pin);
  const started = performance.now();
  const results: BenchResults = {
    meta: {
      date: new Date().toISOString(),
      mode: options.quick ? 'quick' : 'full',
      pinned: pinned ?? '',
      reps: 0,
      budget: { warmup: 0, iterations: 0, maxMs: 0 },
      machine: {
        cpu: cpus()[0]?.model ?? '?',
        cores: cpus().length,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        os: `${type()} ${release()}`,
        load: loadavg().map((l) => Math.round(l * 100) / 100),
      },
      versions: versions(),
      durationSeconds: 0,
      skipped: [],
      notes: [],
    },
    latency: [],
    peers: { kv: [], queue: [] },
    scale: { keys: [], queue: [], sweep: [] },
    lambda: undefined,
    migrate: undefined,
    targets: [],
  };
  const ctx = new Context(options, results);
  const { reps, ...budget } = ctx.budget;
  results.meta.reps = reps;
  results.meta.budget = budget;
  ctx.log(`${results.meta.mode} run; ${results.meta.pinned}; ${reps} repetition(s) per measurement`);
  await ctx.probe();
  // Interrupted: still remove this run's keys and schemas.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      ctx.log(`\n${signal}: cleaning up`);
      void ctx.cleanup().finally(() => process.exit(130));
    });
  }
  try {
    for (const [name, suite] of Object.entries(SUITES)) {
      if (options.only && !options.only.includes(name)) continue;
      ctx.log(`\n== ${name}`);
      const t = performance.now();
      try {
        await suite(ctx);
      } catch (error) {
        // One suite failing (a server gone, packaging broken) leaves the others' numbers standing; the exit status says so.
        ctx.skip(name, (error as Error).stack ?? String(error));
        process.exitCode = 1;
      }
      ctx.log(`   (${((performance.now() - t) / 1000).toFixed(1)} s)`);
    }
  } finally {
    await ctx.cleanup();
  }
  results.meta.durationSeconds = Math.round((performance.now() - started) / 100) / 10;
  results.targets = evaluateTargets(results);
  results.meta.notes.push(
    `load average at the end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );

  // A run of some suites never replaces the report of a full run: `only-<suites>[-<backends>][-quick]`.
  const name = options.only
    ? `only-${[...options.only, ...(options.backends ?? []).map((b) => b.replace(/\W+/g, ''))].join('-')}${options.quick ? '-quick' : ''}`
    : options.quick
      ? 'quick'
      : 'latest';
  mkdirSync(options.out, { recursive: true });
  writeFileSync(join(options.out, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(options.out, `${name}.md`), renderMarkdown(results, `${name}.svg`));
  writeFileSync(join(options.out, `${name}.svg`), renderSvg(results));
  process.stdout.write(renderTerminal(results));
  process.stdout.write(
    `\nwrote ${join(options.out, name)}.{json,md,svg} in ${results.meta.durationSeconds} s\n`,
  );
  renderDocs(join(options.out, `${name}.json`));
}

await main();
