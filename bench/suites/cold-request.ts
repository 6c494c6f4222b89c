/**
 * The first request of a cold container, in parts, per backend and function: `import()` of the
 * packaged handler, the first connection (PostgreSQL with pg, Neon's driver through the local
 * WebSocket proxy, Redis) and the first query, each in a fresh `node` process invoking the
 * handler once with an API Gateway event against the real server (bench/lib/cold-request.mjs
 * says how the request is split). Medians over several cold starts.
 *
 * The packages are built as in the lambda suite (`serverless package`, one per backend; the pg
 * one only in the quick mode); the
 * PostgreSQL schema and Redis key prefix are this run's, made (and migrated) beforehand.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type BackendName, type Context, DATABASE_URL } from '../lib/context.js';
import { median } from '../lib/measure.js';
import type { ColdRequestRow } from '../lib/results.js';
import { extract, lambdaEnv, PACKAGES, packageBundles, result, run } from './lambda.js';

const CHILD = join(import.meta.dirname, '../lib/cold-request.mjs');

/** The backends measured and the wire protocol each speaks. */
const WIRES: [BackendName, 'pg' | 'neon' | 'redis'][] = [
  ['postgresql (pg)', 'pg'],
  ['postgresql (neon)', 'neon'],
  ['redis', 'redis'],
];

/** The functions measured: their zip, the handler's export, and the request the child sends. */
const FUNCTIONS = [
  { name: 'kv', zip: 'kv', exportName: 'handler', request: 'kv' },
  { name: 'publish', zip: 'publish', exportName: 'handler', request: 'publish' },
  { name: 'ws connect', zip: 'wsConnect', exportName: 'connect', request: 'ws-connect' },
] as const;

interface ColdRun {
  importMs: number;
  beforeConnectMs: number;
  connectMs: number;
  firstQueryMs: number;
  requestMs: number;
  processMs: number;
}

/** Medians of each part over `runs`; the total is the median of the per-run sums. */
export function summarize(pkg: string, fn: string, runs: ColdRun[]): ColdRequestRow {
  const of = (part: keyof ColdRun) => median(runs.map((r) => r[part]));
  return {
    package: pkg,
    function: fn,
    runs: runs.length,
    importMs: of('importMs'),
    beforeConnectMs: of('beforeConnectMs'),
    connectMs: of('connectMs'),
    firstQueryMs: of('firstQueryMs'),
    requestMs: of('requestMs'),
    totalMs: median(runs.map((r) => r.importMs + r.requestMs)),
    processMs: of('processMs'),
  };
}

export async function coldRequestSuite(ctx: Context): Promise<void> {
  const coldRuns = ctx.options.quick ? 3 : 9;
  const work = mkdtempSync(join(tmpdir(), 'kst-bench-cold-'));
  ctx.defer(async () => rmSync(work, { recursive: true, force: true }));
  const token = `kbs_${randomBytes(24).toString('base64url')}`;
  const rows: ColdRequestRow[] = [];
  const wanted = ctx.options.backends;
  // The quick mode (run after the tests) packages the pg build only: each package takes ~20 s.
  for (const [backend, wire] of ctx.options.quick ? WIRES.slice(0, 1) : WIRES) {
    if (wanted && !wanted.includes(backend)) continue;
    const why = ctx.unavailable(backend);
    if (why) {
      ctx.skip(`cold request (${backend})`, why);
      continue;
    }
    const config = PACKAGES.find(([label]) => label === backend)?.[1];
    if (!config) throw new Error(`no package configuration for ${backend}`);
    // This run's schema (migrated) and key prefix; the Neon package reaches PostgreSQL through the proxy.
    const { keyPrefix, schema } = await ctx.storageWithNames(backend);
    const runtime: NodeJS.ProcessEnv = {
      ...config,
      DATABASE_URL,
      KEY_PREFIX: keyPrefix,
      POSTGRES_SCHEMA: schema,
      ...(wire === 'neon' ? { NEON_WS_PROXY: await ctx.wsProxy() } : {}),
    };
    const packaged = await packageBundles(ctx, config);
    ctx.log(`  serverless package (${backend}): ${packaged.seconds.toFixed(1)} s`);
    const zips = new Set(readdirSync(packaged.dir));
    const handlers = FUNCTIONS.filter((f) => zips.has(`${f.zip}.zip`)).map((f) => ({
      ...f,
      mjs: extract(join(packaged.dir, `${f.zip}.zip`), join(work, `${wire}-${f.zip}`)),
      runs: [] as ColdRun[],
    }));
    // Round-robin over the functions, so a busy moment of the machine touches each alike.
    for (let r = 0; r < coldRuns; r++) {
      for (const handler of handlers) {
        const out = await run(
          process.execPath,
          [CHILD, handler.mjs, handler.exportName, handler.request, wire],
          {
            cwd: dirname(dirname(handler.mjs)),
            env: { ...lambdaEnv(token, true, runtime), BENCH_ID: `${process.pid}-${wire}-${r}` },
          },
        );
        handler.runs.push(result<ColdRun>(out, `cold ${handler.name} (${backend})`));
      }
    }
    for (const handler of handlers) {
      const row = summarize(backend, handler.name, handler.runs);
      rows.push(row);
      ctx.log(
        `  ${backend.padEnd(18)} ${handler.name.padEnd(10)} import ${row.importMs.toFixed(1)} + before ${row.beforeConnectMs.toFixed(1)} + connect ${row.connectMs.toFixed(1)} + first query ${row.firstQueryMs.toFixed(1)} = ${row.totalMs.toFixed(1)} ms`,
      );
    }
  }
  ctx.results.coldRequest = rows;
}
