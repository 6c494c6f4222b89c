/**
 * The Lambda side: the zips `serverless package` produces (bundle size per function, the .mjs
 * without its source map), cold init of each bundled handler in a fresh `node` process, and the
 * warm overhead of the bundled kv handler invoked in-process with API Gateway events, minus the
 * store operation it performs.
 *
 * The bundles keep @aws-sdk/* external (the Lambda runtime provides it); locally each extracted
 * zip gets a `node_modules` symlink to the project's, from which those imports resolve.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createStorage } from '../../lib/storage/index.js';
import { type Context, DATABASE_URL, REDIS_URL } from '../lib/context.js';
import { measure, median } from '../lib/measure.js';
import type { FunctionRow, WarmHandler } from '../lib/results.js';

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * A package is built for one configuration (each function carries only the backends and driver
 * it uses), so sizes and cold starts are measured for each backend's package. The URLs only
 * have to be valid: packaging opens no connection.
 */
const MEMORY: NodeJS.ProcessEnv = { STORAGE_BACKEND: 'memory' };
export const PACKAGES: [string, NodeJS.ProcessEnv][] = [
  ['memory', MEMORY],
  ['redis', { STORAGE_BACKEND: 'redis', REDIS_URL }],
  ['postgresql (pg)', { STORAGE_BACKEND: 'postgresql', POSTGRES_DRIVER: 'pg', DATABASE_URL }],
  ['postgresql (neon)', { STORAGE_BACKEND: 'postgresql', POSTGRES_DRIVER: 'neon', DATABASE_URL }],
  ['hybrid', { STORAGE_BACKEND: 'hybrid', POSTGRES_DRIVER: 'pg', REDIS_URL, DATABASE_URL }],
];
const CHILD = join(import.meta.dirname, '../lib/invoke-handler.mjs');

interface Output {
  stdout: string;
  stderr: string;
  status: number | null;
  ms: number;
}

export function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Output> {
  return new Promise((done, fail) => {
    const t = performance.now();
    const child = spawn(command, args, {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', fail);
    child.on('close', (status) => {
      clearTimeout(timer);
      done({ stdout, stderr, status, ms: performance.now() - t });
    });
  });
}

/** The environment a deployed function runs with (serverless.yml), on the memory backend, with a bootstrap token. */
export function lambdaEnv(
  token: string,
  sourceMaps: boolean,
  config: NodeJS.ProcessEnv = MEMORY,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...config,
    BOOTSTRAP_TOKEN_HASH: createHash('sha256').update(token).digest('hex'),
    BENCH_TOKEN: token,
    POWERTOOLS_SERVICE_NAME: 'kubently-storage',
    POWERTOOLS_LOG_LEVEL: 'INFO',
    AWS_REGION: 'us-east-1',
    AWS_LAMBDA_FUNCTION_NAME: 'bench',
  };
  if (sourceMaps) env.NODE_OPTIONS = '--enable-source-maps';
  return env;
}

/** Packages into a temporary directory (never the project's .serverless, which others may be using). */
export async function packageBundles(
  ctx: Context,
  config: NodeJS.ProcessEnv,
): Promise<{ dir: string; seconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'kst-bench-package-'));
  ctx.defer(async () => rmSync(dir, { recursive: true, force: true }));
  // Only `config` decides what the package carries, not whatever the calling shell exported.
  const { STORAGE_BACKEND, POSTGRES_DRIVER, REDIS_URL: _r, DATABASE_URL: _d, ...inherited } = process.env;
  const out = await run('npx', ['serverless', 'package', '--package', dir], {
    env: {
      ...inherited,
      ...config,
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_REGION: 'us-east-1',
    },
    timeoutMs: 300_000,
  });
  if (out.status !== 0)
    throw new Error(`serverless package failed (${out.status}): ${(out.stderr || out.stdout).slice(-2000)}`);
  return { dir, seconds: out.ms / 1000 };
}

export function extract(zip: string, into: string): string {
  const r = spawnSync('unzip', ['-q', '-o', zip, '-d', into]);
  if (r.status !== 0) throw new Error(`unzip ${zip}: ${r.stderr}`);
  symlinkSync(join(ROOT, 'node_modules'), join(into, 'node_modules'), 'dir');
  const mjs = readdirSync(join(into, 'functions')).find((f) => f.endsWith('.mjs'));
  if (!mjs) throw new Error(`${zip}: no functions/*.mjs`);
  return join(into, 'functions', mjs);
}

const COLD = `const t = performance.now(); await import(process.argv[1]); const done = performance.now();
process.stdout.write('\\nRESULT ' + JSON.stringify({ importMs: done - t, sinceStart: done }) + '\\n');`;

export function result<T>(out: Output, what: string): T {
  const line = out.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (out.status !== 0 || !line)
    throw new Error(`${what} exited ${out.status}: ${(out.stderr || out.stdout).slice(-1500)}`);
  return JSON.parse(line.slice(7)) as T;
}

/** Sizes and cold init of every function in the zips under `dir`, extracted under `work`; answers the handler paths. */
async function measurePackage(
  ctx: Context,
  label: string,
  config: NodeJS.ProcessEnv,
  dir: string,
  work: string,
  token: string,
  functions: FunctionRow[],
): Promise<Map<string, string>> {
  const zips = readdirSync(dir)
    .filter((f) => f.endsWith('.zip'))
    .sort();
  if (zips.length === 0) throw new Error(`no function zips in ${dir}`);
  const coldRuns = ctx.options.quick ? 1 : 3;
  const handlers = new Map<string, string>();
  for (const zip of zips) {
    const name = zip.replace(/\.zip$/, '');
    const into = join(work, `${label.replace(/\W+/g, '-')}-${name}`);
    const mjs = extract(join(dir, zip), into);
    handlers.set(name, mjs);
    const imports: number[] = [];
    const processes: number[] = [];
    const noMaps: number[] = [];
    for (let r = 0; r < coldRuns; r++) {
      for (const sourceMaps of [true, false]) {
        const out = await run(process.execPath, ['--input-type=module', '-e', COLD, mjs], {
          cwd: into,
          env: lambdaEnv(token, sourceMaps, config),
        });
        const cold = result<{ importMs: number; sinceStart: number }>(out, `cold init of ${name}`);
        if (sourceMaps) {
          imports.push(cold.importMs);
          processes.push(cold.sinceStart);
        } else noMaps.push(cold.importMs);
      }
    }
    functions.push({
      package: label,
      name,
      bundleBytes: statSync(mjs).size,
      zipBytes: statSync(join(dir, zip)).size,
      coldImportMs: median(imports),
      coldImportNoMapsMs: median(noMaps),
      coldProcessMs: median(processes),
    });
  }
  const mine = functions.filter((f) => f.package === label);
  const sizes = mine.map((f) => f.bundleBytes / 1000);
  const colds = mine.map((f) => f.coldImportMs);
  ctx.log(
    `  ${label.padEnd(18)} ${mine.length} functions, ${Math.min(...sizes).toFixed(0)}–${Math.max(...sizes).toFixed(0)} KB, cold import ${Math.min(...colds).toFixed(1)}–${Math.max(...colds).toFixed(1)} ms`,
  );
  return handlers;
}

export async function lambdaSuite(ctx: Context): Promise<void> {
  const quick = ctx.options.quick;
  const work = mkdtempSync(join(tmpdir(), 'kst-bench-lambda-'));
  ctx.defer(async () => rmSync(work, { recursive: true, force: true }));
  const token = `kbs_${randomBytes(24).toString('base64url')}`;
  const functions: FunctionRow[] = [];
  let seconds = 0;
  let handlers: Map<string, string>;
  if (ctx.options.bundles) {
    // Zips packaged elsewhere (CI's): for whatever configuration they were built.
    handlers = await measurePackage(
      ctx,
      'as packaged',
      MEMORY,
      resolve(ctx.options.bundles),
      work,
      token,
      functions,
    );
  } else {
    handlers = new Map();
    // The quick mode packages the memory build only; the full run every backend's.
    for (const [label, config] of quick ? PACKAGES.slice(0, 1) : PACKAGES) {
      const packaged = await packageBundles(ctx, config);
      seconds += packaged.seconds;
      ctx.log(`  serverless package (${label}): ${packaged.seconds.toFixed(1)} s`);
      const got = await measurePackage(ctx, label, config, packaged.dir, work, token, functions);
      if (label === 'memory') handlers = got;
    }
  }
  const kv = handlers.get('kv');
  const warm: WarmHandler[] = [];
  if (kv) {
    // The store operation each route performs, on the library directly (memory, as in the handler).
    const storage = createStorage({ backend: 'memory' });
    ctx.defer(() => storage.close());
    await storage.kv.set('bench-key', { cluster: 'prod', pods: 42, ready: true });
    const stores = {
      GET: await measure(() => storage.kv.getEntry('bench-key'), ctx.budget),
      PUT: await measure(
        () => storage.kv.set('bench-key', { cluster: 'prod', pods: 42, ready: true }),
        ctx.budget,
      ),
    };
    for (const method of ['GET', 'PUT'] as const) {
      const { warmup, iterations, reps } = ctx.budget;
      const out = await run(
        process.execPath,
        [
          CHILD,
          kv,
          method,
          '/kv/{key}',
          'bench-key',
          String(warmup),
          String(Math.min(iterations, quick ? 300 : 3000)),
          String(reps),
        ],
        { cwd: dirname(dirname(kv)), env: lambdaEnv(token, true) },
      );
      const runs = result<{ p50: number; p99: number }[]>(out, `warm ${method} /kv/{key}`);
      const handler = { p50: median(runs.map((r) => r.p50)), p99: median(runs.map((r) => r.p99)) };
      const store = stores[method];
      warm.push({
        route: `${method} /kv/{key}`,
        backend: 'memory',
        handler,
        store: { p50: store.p50, p99: store.p99 },
        overheadP50: handler.p50 - store.p50,
      });
      ctx.log(
        `  warm ${method} /kv/{key}: handler p50 ${handler.p50.toFixed(3)} ms, store op ${store.p50.toFixed(4)} ms`,
      );
    }
  } else ctx.skip('warm handler', 'no kv.zip among the bundles');

  ctx.results.lambda = {
    functions,
    warm,
    packageSeconds: seconds,
    source: ctx.options.bundles
      ? `existing zips in ${ctx.options.bundles}`
      : '`serverless package` in this run',
  };
}
