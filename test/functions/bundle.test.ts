// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are YAML with ${VAR} references, not templates
/**
 * What `serverless package` puts in each function: the functions bundled with serverless.yml's
 * esbuild options and plugins (deploy/esbuild-plugins.cjs) for a given configuration. Each
 * function's JavaScript stays within its size budget; a build carries only the backends and
 * PostgreSQL driver of its configuration and no YAML parser; a function whose configuration at
 * run time needs what its build left out answers with how to repackage; the configuration file
 * is read at package time, its `${VAR}` references at run time.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type BuildOptions, build, type Metafile, type Plugin } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig, readConfigDocument, type StorageConfig } from '../../lib/config/index.js';

const require = createRequire(import.meta.url);
const { backendPlugins } = require('../../deploy/esbuild-plugins.cjs') as {
  backendPlugins(config: StorageConfig, document?: { sha256: string; document: unknown }): Plugin[];
};

const root = join(import.meta.dirname, '../..');
const KB = 1024;
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'kubently-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** serverless.yml's `custom.esbuild` as esbuild options, and the functions' entry files. */
function serverlessBuild(): { options: BuildOptions; entries: string[] } {
  const yml = parse(readFileSync(join(root, 'serverless.yml'), 'utf8'), { logLevel: 'silent' });
  const { outputWorkFolder, plugins, exclude, outputFileExtension, ...options } = yml.custom.esbuild;
  expect(plugins).toBe('./deploy/esbuild-plugins.cjs');
  const handlers = Object.values(yml.functions as Record<string, { handler: string }>).map((f) => f.handler);
  return {
    options: { ...options, external: exclude, outExtension: { '.js': outputFileExtension } },
    entries: [
      ...new Set(handlers.map((handler) => join(root, `${handler.slice(0, handler.lastIndexOf('.'))}.ts`))),
    ],
  };
}

const { options, entries } = serverlessBuild();

function configFor(env: Record<string, string>, file?: string): StorageConfig {
  return loadConfig({ env: file ? { ...env, STORAGE_CONFIG: file } : env, cwd: root });
}

function documentOf(file: string) {
  const text = readFileSync(file, 'utf8');
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  return {
    sha256: createHash('sha256').update(text).digest('hex'),
    document: readConfigDocument(text, file),
  };
}

interface Bundles {
  /** Entry name (`kv`, `ws`, …) → bytes of its .mjs. */
  sizes: Record<string, number>;
  /** Every input of every function. */
  inputs: Set<string>;
  outdir: string;
}

async function bundle(config: StorageConfig, document?: ReturnType<typeof documentOf>, only = entries) {
  const outdir = mkdtempSync(join(dir, 'out-'));
  const result = await build({
    ...options,
    entryPoints: only,
    outdir,
    metafile: true,
    write: true,
    logLevel: 'silent',
    plugins: backendPlugins(config, document),
  });
  const sizes: Record<string, number> = {};
  const inputs = new Set<string>();
  for (const [file, output] of Object.entries((result.metafile as Metafile).outputs)) {
    if (!file.endsWith('.mjs')) continue;
    sizes[file.slice(file.lastIndexOf('/') + 1, -'.mjs'.length)] = output.bytes;
    for (const input of Object.keys(output.inputs)) inputs.add(input);
  }
  return { sizes, inputs, outdir } satisfies Bundles;
}

const has = (bundles: Bundles, pkg: string) =>
  [...bundles.inputs].some((input) => input.includes(`node_modules/${pkg}/`));

/** Invokes a bundled handler in a fresh `node` with `env`, as a Lambda container would. */
async function invoke(file: string, exportName: string, env: Record<string, string>, event: unknown) {
  const script = `
    const mod = await import(${JSON.stringify(file)});
    const context = { awsRequestId: 'test', functionName: 'test', getRemainingTimeInMillis: () => 5000 };
    const response = await mod[${JSON.stringify(exportName)}](${JSON.stringify(event)}, context);
    process.stdout.write(JSON.stringify(response));
    process.exit(0);`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      ...env,
    },
  });
  const response = JSON.parse(stdout) as { statusCode: number; body: string };
  return { status: response.statusCode, body: JSON.parse(response.body) };
}

const healthEvent = {
  version: '2.0',
  routeKey: 'GET /health',
  rawPath: '/health',
  rawQueryString: '',
  headers: {},
  requestContext: { http: { method: 'GET', path: '/health' }, requestId: 'test' },
};

const REDIS = { REDIS_URL: 'redis://127.0.0.1:6379' };
const PG = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test' };

// The target is 400 KB of JavaScript per function (the AWS SDK is the runtime's). A hybrid
// carries two backends' drivers and does not meet it: its budget holds what it is today (499 KB,
// down from 536 KB when error class names stopped needing esbuild's keepNames and ioredis' debug
// was replaced by a stand-in), so any growth fails. The Neon driver's build fits since `ws` is
// bundled without its server and the driver's unreached modules are dropped; its budget is the
// bench's 400 KB (1000 bytes each), so growth past the target fails here.
const configurations: [name: string, env: Record<string, string>, budget: number, drivers: string[]][] = [
  ['memory', { STORAGE_BACKEND: 'memory' }, 400 * KB, []],
  ['redis', { STORAGE_BACKEND: 'redis', ...REDIS }, 400 * KB, ['ioredis']],
  ['postgresql (pg)', { STORAGE_BACKEND: 'postgresql', ...PG }, 400 * KB, ['pg']],
  [
    'postgresql (neon)',
    { STORAGE_BACKEND: 'postgresql', POSTGRES_DRIVER: 'neon', ...PG },
    400_000,
    ['@neondatabase/serverless', 'ws'],
  ],
  ['hybrid (pg)', { STORAGE_BACKEND: 'hybrid', ...REDIS, ...PG }, 499 * KB, ['ioredis', 'pg']],
];
const ALL_DRIVERS = ['ioredis', 'pg', '@neondatabase/serverless', 'ws'];

describe('packaged functions', () => {
  it.each(configurations)(
    '%s: every function within its budget, with only its drivers and no YAML parser',
    async (_name, env, budget, drivers) => {
      const bundles = await bundle(configFor(env));
      expect(Object.keys(bundles.sizes).sort()).toEqual(
        entries.map((entry) => entry.slice(entry.lastIndexOf('/') + 1, -'.ts'.length)).sort(),
      );
      const over = Object.entries(bundles.sizes)
        .filter(([, bytes]) => bytes > budget)
        .map(([name, bytes]) => `${name}.mjs: ${bytes} bytes > ${budget}`);
      expect(over).toEqual([]);
      expect(ALL_DRIVERS.filter((driver) => has(bundles, driver))).toEqual(drivers);
      expect(has(bundles, 'yaml')).toBe(false);
    },
    60_000,
  );

  it('a configuration needing a backend or driver the build left out is refused, and health says how to repackage', async () => {
    const memory = await bundle(configFor({ STORAGE_BACKEND: 'memory' }), undefined, [
      join(root, 'functions/health.ts'),
    ]);
    const health = join(memory.outdir, 'health.mjs');
    expect(await invoke(health, 'handler', { STORAGE_BACKEND: 'memory' }, healthEvent)).toMatchObject({
      status: 200,
      body: { status: 'ok', backend: 'memory' },
    });
    expect(await invoke(health, 'handler', { STORAGE_BACKEND: 'redis', ...REDIS }, healthEvent)).toEqual({
      status: 503,
      body: {
        status: 'down',
        backend: 'redis',
        checks: {},
        error: {
          code: 'unavailable',
          message:
            'invalid configuration: storage.backend: redis is not available in this build (packaged for memory; repackage with STORAGE_BACKEND=redis)',
        },
      },
    });

    const pg = await bundle(configFor({ STORAGE_BACKEND: 'postgresql', ...PG }), undefined, [
      join(root, 'functions/health.ts'),
      join(root, 'functions/kv.ts'),
    ]);
    const neon = { STORAGE_BACKEND: 'postgresql', POSTGRES_DRIVER: 'neon', ...PG };
    const message =
      'postgresql.driver: neon is not available in this build (packaged for postgresql with the pg driver; repackage with POSTGRES_DRIVER=neon)';
    expect(
      (await invoke(join(pg.outdir, 'health.mjs'), 'handler', neon, healthEvent)).body.error.message,
    ).toBe(`invalid configuration: ${message}`);
    const kvEvent = {
      ...healthEvent,
      routeKey: 'GET /kv/{key}',
      rawPath: '/kv/a',
      pathParameters: { key: 'a' },
      headers: { authorization: 'Bearer kbs_test' },
    };
    expect(await invoke(join(pg.outdir, 'kv.mjs'), 'handler', neon, kvEvent)).toEqual({
      status: 503,
      body: { error: { code: 'unavailable', message: `invalid configuration: ${message}` } },
    });
  }, 60_000);

  it("the fallback function ($default route) answers docs/api.md's 404 and 405 bodies from its bundle", async () => {
    const built = await bundle(configFor({ STORAGE_BACKEND: 'memory' }), undefined, [
      join(root, 'functions/fallback.ts'),
    ]);
    const fallback = join(built.outdir, 'fallback.mjs');
    const event = (method: string, path: string) => ({
      ...healthEvent,
      routeKey: '$default',
      rawPath: path,
      requestContext: { http: { method, path }, requestId: 'test' },
    });
    expect(await invoke(fallback, 'handler', {}, event('GET', '/nope'))).toEqual({
      status: 404,
      body: {
        error: { code: 'not_found', message: 'no route GET "/nope"; the routes are listed in openapi.yaml' },
      },
    });
    expect(await invoke(fallback, 'handler', {}, event('PATCH', '/kv/a'))).toEqual({
      status: 405,
      body: {
        error: {
          code: 'method_not_allowed',
          message: 'PATCH is not allowed on /kv/{key}; allowed: PUT, GET, DELETE',
        },
      },
    });
  }, 60_000);

  it('error classes keep their names in the minified bundle (logs and the Redis backend read them)', async () => {
    const entry = join(dir, 'error-names.ts');
    writeFileSync(
      entry,
      [
        `import { ValidationError, BackendUnavailableError } from ${JSON.stringify(join(root, 'lib/errors.ts'))};`,
        `import { ReplyError } from 'redis-errors';`,
        `import { MaxRetriesPerRequestError } from 'ioredis/built/errors/index.js';`,
        'export const names = [new ValidationError("key", "bad"), new BackendUnavailableError("down"),',
        '  new ReplyError("ERR"), new MaxRetriesPerRequestError(1)].map((error) => error.name);',
      ].join('\n'),
    );
    const outdir = mkdtempSync(join(dir, 'out-'));
    await build({
      ...options,
      entryPoints: [entry],
      nodePaths: [join(root, 'node_modules')],
      outdir,
      write: true,
      logLevel: 'silent',
      plugins: backendPlugins(configFor({ STORAGE_BACKEND: 'memory' })),
    });
    const { names } = await import(join(outdir, 'error-names.mjs'));
    expect(names).toEqual([
      'ValidationError',
      'BackendUnavailableError',
      'ReplyError',
      'MaxRetriesPerRequestError',
    ]);
  }, 60_000);

  it('the configuration file is read at package time and its ${VAR} references at run time', async () => {
    const file = join(dir, 'config.yaml');
    writeFileSync(
      file,
      'storage:\n  backend: memory\nredis:\n  key_prefix: "${PREFIX}"\nqueues:\n  max_attempts: ${ATTEMPTS:-3}\n',
    );
    const bundles = await bundle(configFor({ PREFIX: 'packaged:' }, file), documentOf(file), [
      join(root, 'functions/health.ts'),
    ]);
    const health = join(bundles.outdir, 'health.mjs');
    const text = readFileSync(health, 'utf8');
    expect(text).toContain('${PREFIX}');
    expect(text).not.toContain('packaged:');
    expect(has(bundles, 'yaml')).toBe(false);

    const env = { STORAGE_CONFIG: file, PREFIX: 'run:' };
    expect((await invoke(health, 'handler', env, healthEvent)).status).toBe(200);
    // A reference is resolved from the function's environment, its problems told with the file's line.
    expect((await invoke(health, 'handler', { ...env, ATTEMPTS: 'x' }, healthEvent)).body.error.message).toBe(
      `invalid configuration: queues.max_attempts: expected a whole number, got "x" (${file}:6)`,
    );
    expect(
      (await invoke(health, 'handler', { STORAGE_CONFIG: file }, healthEvent)).body.error.message,
    ).toMatch(/^invalid configuration: redis\.key_prefix: \$\{PREFIX\} is not set/);
    writeFileSync(file, 'storage:\n  backend: memory\n');
    expect((await invoke(health, 'handler', env, healthEvent)).body.error.message).toBe(
      `invalid configuration: ${file}: differs from the file this function was packaged with; configuration files are read at package time (repackage with this one)`,
    );
  }, 60_000);
});
