/**
 * `kubently-storage migrate …` (also `npm run migrate:data -- …`): copy, validate and sync data
 * from Redis (this project's layout, or an upstream Kubently database) into the PostgreSQL
 * backend. Usage is in `USAGE`; exit codes: 0 done, 1 a mismatch or a copy that stopped, 2 bad
 * input (arguments, URLs, unreachable servers, a target without its tables) — always one clear
 * message, never a stack trace.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { loadConfig, type StorageConfig } from '../config/index.js';
import { ConfigError, StorageError } from '../errors.js';
import { createStorage, hybridControl } from '../storage/index.js';
import { createSql, mapSqlError, type Sql } from '../storage/postgresql/sql.js';
import { createRedisClient } from '../storage/redis/client.js';
import { type CopyReport, copy, jobName } from './copy.js';
import { createLegacySource } from './legacy.js';
import { writeLegacyFixture } from './legacy-fixture.js';
import { createPgTarget, type PgTarget } from './pg-target.js';
import { copyProgress, copySummary, duration, type Output, table, validationSummary } from './progress.js';
import { STORE_TITLES, STORES, type StoreName } from './records.js';
import { createRedisSource } from './redis-source.js';
import { DataMigrationInputError, type RecordSource } from './source.js';
import { type Flags, parse, USAGE, UsageError, usageExitCode } from './usage.js';
import { ValidationInterrupted, type ValidationReport, validate } from './validate.js';

export interface CliIo {
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
  /** Where `config.yaml` and a relative `--config` are looked for (default: the process's). */
  cwd?: string;
  /** Ctrl-C: the first stops after the current batch. */
  signal?: AbortSignal;
}

/** Runs the CLI; answers the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const say = (text: string) => io.stdout.write(`${text}\n`);
  const warn = (text: string) => io.stderr.write(`${text}\n`);
  let resources: Resources | undefined;
  try {
    const { values: flags, positionals } = parse(argv);
    const [group, command, ...rest] = positionals;
    const usage = usageExitCode(flags, group);
    if (usage !== undefined) {
      say(USAGE);
      return usage;
    }
    if (group !== 'migrate')
      throw new UsageError(`unknown command ${JSON.stringify(group)}: expected migrate`);
    if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
    switch (command) {
      case 'copy':
      case 'validate':
      case 'sync':
      case 'status':
        break;
      case 'legacy-fixture':
        return await fixture(flags, io);
      case undefined:
        throw new UsageError('missing command: copy, validate, sync, status or legacy-fixture');
      default:
        throw new UsageError(
          `unknown command ${JSON.stringify(command)}: expected copy, validate, sync, status or legacy-fixture`,
        );
    }
    const settings = resolveSettings(flags, io, command);
    resources = await open(settings);
    await resources.checkSource();
    await resources.target.check();
    await resources.begin();
    const { source, target } = resources;

    if (command === 'status') {
      const checkpoint = await target.loadCheckpoint(jobName(source, target));
      if (!checkpoint)
        say(
          `no checkpoint: nothing copied from ${source.name} into ${target.name} schema ${target.schema} yet`,
        );
      else say(statusText(checkpoint));
      return 0;
    }
    if (command === 'copy') {
      const report = await runCopy(settings, resources, io);
      say(flags.json ? JSON.stringify(report, null, 2) : copySummary(report));
      return report.interrupted ? 1 : 0;
    }
    if (command === 'validate') {
      const report = await runValidate(settings, resources, io);
      say(flags.json ? JSON.stringify(report, null, 2) : validationSummary(report));
      return report.ok ? 0 : 1;
    }
    return await sync(settings, resources, io);
  } catch (error) {
    warn(`migrate: ${describe(error)}`);
    if (error instanceof UsageError) warn('run `kubently-storage migrate --help` for usage');
    return isInputError(error) ? 2 : 1;
  } finally {
    await resources?.close();
  }
}

// ---------------------------------------------------------------------------------------

interface Settings {
  command: string;
  from: 'redis' | 'legacy';
  config: StorageConfig;
  prefix: string;
  stores?: StoreName[];
  batchSize: number;
  dryRun: boolean;
  restart: boolean;
  verify: boolean;
  move: boolean;
  sample?: number;
  toleranceMs: number;
  sinceMs?: number;
}

function resolveSettings(flags: Flags, io: CliIo, command: string): Settings {
  const { env } = io;
  const from = flags.from ?? 'redis';
  if (from !== 'redis' && from !== 'legacy') {
    throw new UsageError(
      `unknown --from ${JSON.stringify(from)}: expected redis (this project's Redis layout) or legacy (an upstream Kubently Redis)`,
    );
  }
  const to = flags.to ?? 'postgresql';
  if (to !== 'postgresql') {
    throw new UsageError(`unknown --to ${JSON.stringify(to)}: the only target is postgresql`);
  }
  // Flags become the environment variables the configuration already reads, so one set of
  // rules (and messages) applies: flag, then variable, then file, then default.
  const overrides: Record<string, string | undefined> = {
    REDIS_URL: flags['redis-url'],
    REDIS_CLUSTER: flags['redis-cluster'] ? 'true' : undefined,
    KEY_PREFIX: flags.prefix,
    DATABASE_URL: flags['database-url'],
    POSTGRES_SCHEMA: flags.schema,
    POSTGRES_DRIVER: flags.driver,
    NEON_WS_PROXY: flags['ws-proxy'],
  };
  const merged: NodeJS.ProcessEnv = { ...env };
  for (const [name, value] of Object.entries(overrides)) if (value !== undefined) merged[name] = value;
  let config: StorageConfig;
  try {
    config = loadConfig({ env: merged, file: flags.config, cwd: io.cwd });
  } catch (error) {
    if (error instanceof ConfigError)
      throw new DataMigrationInputError(`invalid configuration: ${error.problems.join('; ')}`);
    throw error;
  }
  checkUrl('redis', config.redis.url, ['redis:', 'rediss:'], '--redis-url or REDIS_URL');
  if (config.postgresql.driver === 'pglite') {
    throw new UsageError(
      '--driver pglite: the embedded database cannot be a migration target; use pg or neon',
    );
  }
  if (!config.postgresql.url) {
    throw new UsageError(
      'no target: give --database-url postgres://user:password@host:5432/db (or DATABASE_URL)',
    );
  }
  checkUrl(
    'postgresql',
    config.postgresql.url,
    ['postgres:', 'postgresql:'],
    '--database-url or DATABASE_URL',
  );

  const stores = flags.only === undefined ? undefined : parseStores(flags.only);
  const positive = (name: string, text: string | undefined, fallback: number, max = 100_000) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1 || value > max)
      throw new UsageError(
        `--${name}: expected a whole number from 1 to ${max}, got ${JSON.stringify(text)}`,
      );
    return value;
  };
  const tolerance = flags.tolerance === undefined ? 2 : Number(flags.tolerance);
  if (!Number.isFinite(tolerance) || tolerance < 0 || tolerance > 86_400) {
    throw new UsageError(
      `--tolerance: expected seconds from 0 to 86400, got ${JSON.stringify(flags.tolerance)}`,
    );
  }
  let sinceMs: number | undefined;
  if (flags.since !== undefined) {
    sinceMs = Date.parse(flags.since);
    if (Number.isNaN(sinceMs))
      throw new UsageError(`--since: expected an ISO 8601 time, got ${JSON.stringify(flags.since)}`);
  }
  if (flags.move && (stores === undefined || stores.some((s) => s !== 'queues' && s !== 'dedup'))) {
    throw new UsageError('--move applies to queues only: use it with --only queues,dedup');
  }
  if (flags.move && from !== 'redis') throw new UsageError('--move needs --from redis');
  const only = (allowed: string[], flag: string, value: unknown) => {
    if (value !== undefined && !allowed.includes(command))
      throw new UsageError(`${flag} applies to ${allowed.join(' and ')} only`);
  };
  only(['copy', 'sync'], '--dry-run', flags['dry-run']);
  only(['copy', 'sync'], '--restart', flags.restart);
  only(['copy'], '--move', flags.move);
  only(['validate', 'sync'], '--sample', flags.sample);
  only(['sync'], '--since', flags.since);
  // Checked before connecting to anything: without dual-write there is nothing to sync.
  if (command === 'sync') {
    if (from !== 'redis')
      throw new UsageError(
        "sync moves this project's Redis layout (--from redis); for a legacy database use copy",
      );
    if (config.backend !== 'hybrid' || !(config.migration.dualWrite || config.hybrid.sync.enabled)) {
      throw new DataMigrationInputError(
        'sync needs the deployment to dual-write first: in the storage config set `storage.backend: hybrid` and ' +
          '`migration.dual_write: true` (routing unchanged), deploy, wait for the rollout to finish, then run sync ' +
          'with --config pointing at that file (for a one-off copy without dual-write use `migrate copy`)',
      );
    }
  }
  return {
    command,
    from,
    config,
    // The legacy service wrote its keys without a prefix.
    prefix: flags.prefix ?? (from === 'legacy' ? (env.KEY_PREFIX ?? '') : config.keyPrefix),
    stores,
    batchSize: positive('batch-size', flags['batch-size'], 1000, 10_000),
    dryRun: flags['dry-run'] === true,
    restart: flags.restart === true,
    verify: flags['no-verify'] !== true,
    move: flags.move === true,
    sample: flags.sample === undefined ? undefined : positive('sample', flags.sample, 100, 10_000_000),
    toleranceMs: tolerance * 1000,
    sinceMs,
  };
}

function parseStores(text: string): StoreName[] {
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new UsageError(`--only: expected store names (${STORES.join(', ')})`);
  for (const name of names) {
    if (!(STORES as readonly string[]).includes(name)) {
      throw new UsageError(`--only: unknown store ${JSON.stringify(name)}: expected ${STORES.join(', ')}`);
    }
  }
  return names as StoreName[];
}

function checkUrl(what: string, url: string, protocols: string[], flag: string) {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${what} URL is not a URL (${flag}): ${JSON.stringify(redact(url))}`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new UsageError(
      `${what} URL must start with ${protocols.map((p) => `${p}//`).join(' or ')} (${flag}), got ${JSON.stringify(redact(url))}`,
    );
  }
}

/** A URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

// ---------------------------------------------------------------------------------------

interface Resources {
  source: RecordSource;
  target: PgTarget;
  redis: Redis;
  sql: Sql;
  /** After the checks: what the source needs from the target before it is read (legacy). */
  begin(): Promise<void>;
  /** `source.check()`, naming the connection's error when Redis cannot be reached. */
  checkSource(): Promise<void>;
  close(): Promise<void>;
}

async function open(settings: Settings): Promise<Resources> {
  const { config } = settings;
  // A CLI gives up on an unreachable server after a few tries instead of reconnecting for ever.
  const redis = createRedisClient(
    {
      ...config,
      redis: {
        ...config.redis,
        connectTimeout: Math.min(config.redis.connectTimeout, 3),
        commandTimeout: 60,
        maxRetriesPerRequest: 1,
      },
    },
    // One retry: a server that does not answer is reported within seconds, not after four timeouts.
    { retryStrategy: (times) => (times > 1 ? null : 200), lazyConnect: true },
  ) as Redis;
  // The connection's own error (ECONNREFUSED, ENOTFOUND, WRONGPASS) says more than the
  // command's "max retries" that a failed ping answers.
  let redisError: Error | undefined;
  redis.on('error', (error: Error) => {
    redisError = error;
  });
  const redisName = redact(config.redis.url);
  const sql = await createSql({
    ...config.postgresql,
    listen: false,
    poolSize: 4,
    minPoolSize: 0,
    commandTimeout: 600,
  });
  const target = createPgTarget({
    sql,
    schema: config.postgresql.schema,
    name: redact(config.postgresql.url ?? ''),
  });
  let source: RecordSource;
  const legacyName = settings.prefix ? `${redisName}, prefix ${settings.prefix}` : redisName;
  const legacy = (importedAt: number) =>
    createLegacySource({ client: redis, name: legacyName, prefix: settings.prefix, now: () => importedAt });
  if (settings.from === 'legacy') {
    source = legacy(Date.now());
  } else {
    source = createRedisSource({
      client: redis,
      prefix: settings.prefix,
      name: `${redisName}, prefix ${settings.prefix}`,
    });
  }
  const resources: Resources = {
    source,
    target,
    redis,
    sql,
    async begin() {
      if (settings.from !== 'legacy') return;
      // Legacy tokens carry no creation time: they get the job's first start, read from the
      // checkpoint, so every run of the job and every validate agrees on it. A first copy
      // records its start before reading anything (as a finished job with nothing copied, so it
      // is not taken for one to resume); otherwise the time would be this process's clock now
      // and the checkpoint's the database's at the first batch, which validate would not match.
      const job = jobName(resources.source, target);
      let started = await target.loadCheckpoint(job);
      if (!started && settings.command === 'copy' && !settings.dryRun) {
        await target.saveCheckpoint(job, { stores: {} }, true);
        started = await target.loadCheckpoint(job);
      }
      if (started) resources.source = legacy(Date.parse(started.startedAt));
    },
    async checkSource() {
      try {
        await resources.source.check();
      } catch (error) {
        if (redisError === undefined || redis.status === 'ready') throw error;
        throw new DataMigrationInputError(
          `cannot reach the source Redis at ${redisName}: ${redisError.message}`,
          { cause: error },
        );
      }
    },
    async close() {
      await resources.source.close().catch(() => {});
      await sql.close().catch(() => {});
      redis.disconnect();
    },
  };
  return resources;
}

async function runCopy(
  settings: Settings,
  resources: Resources,
  io: CliIo,
  extra: { stores?: StoreName[]; sinceMs?: number } = {},
): Promise<CopyReport> {
  const progress = copyProgress(io.stderr);
  try {
    return await copy({
      source: resources.source,
      target: resources.target,
      stores: extra.stores ?? settings.stores,
      batchSize: settings.batchSize,
      dryRun: settings.dryRun,
      restart: settings.restart,
      verify: settings.verify,
      move: settings.move,
      dualWriteSinceMs: extra.sinceMs,
      toleranceMs: settings.toleranceMs,
      onProgress: progress.update,
      signal: io.signal,
    });
  } finally {
    progress.finish();
  }
}

async function runValidate(
  settings: Settings,
  resources: Resources,
  io: CliIo,
  stores?: StoreName[],
): Promise<ValidationReport> {
  let last = 0;
  try {
    return await validate({
      source: resources.source,
      target: resources.target,
      stores: stores ?? settings.stores,
      sample: settings.sample,
      toleranceMs: settings.toleranceMs,
      batchSize: settings.batchSize,
      signal: io.signal,
      onProgress: (store, checked, estimate) => {
        const now = Date.now();
        if (now - last < (io.stderr.isTTY ? 100 : 5000)) return;
        last = now;
        const text = `validate: ${STORE_TITLES[store]}: ${checked.toLocaleString('en-US')}${estimate ? `/${estimate.toLocaleString('en-US')}` : ''} checked`;
        io.stderr.write(io.stderr.isTTY ? `\r${text}\u001b[K` : `${text}\n`);
      },
    });
  } finally {
    if (io.stderr.isTTY && last > 0) io.stderr.write('\n');
  }
}

/** The stores dual-write keeps in step (queues and events are not mirrored: see docs/hybrid.md). */
const MIRRORED: StoreName[] = ['kv', 'sessions', 'tokens', 'connections', 'audit'];
const TYPE_STORES: Record<string, StoreName[]> = {
  cache: ['kv'],
  sessions: ['sessions'],
  authentication: ['tokens'],
  audit: ['audit'],
  pubsub: ['events', 'connections'],
  queues: ['queues', 'dedup'],
};

async function sync(settings: Settings, resources: Resources, io: CliIo): Promise<number> {
  const say = (text: string) => io.stdout.write(`${text}\n`);
  const { config } = settings;
  const sinceMs = settings.sinceMs ?? Date.now();
  say(
    `1/4 dual-write is on (${config.hybrid.sync.async ? 'asynchronous' : 'synchronous'}); writers mirror since ${new Date(sinceMs).toISOString()}`,
  );
  const stores = (settings.stores ?? MIRRORED).filter((s) => MIRRORED.includes(s));
  say(`2/4 copying ${stores.map((s) => STORE_TITLES[s]).join(', ')}`);
  const copied = await runCopy(settings, resources, io, { stores, sinceMs });
  say(copySummary(copied));
  if (copied.interrupted) return 1;
  if (settings.dryRun) return 0;
  say('\n3/4 validating');
  const report = await runValidate(settings, resources, io, stores);
  say(validationSummary(report));

  say('\n4/4 lag');
  const lag = await measureLag(config);
  say(lag.lines.join('\n'));
  say('');
  say(nextSteps(config, report));
  return report.ok ? 0 : 1;
}

/** How far the secondary is behind: journaled mirrors waiting, and one mirror timed end to end. */
async function measureLag(config: StorageConfig): Promise<{ lines: string[] }> {
  const storage = createStorage({
    ...config,
    hybrid: { ...config.hybrid, sync: { ...config.hybrid.sync, enabled: true } },
  });
  const lines: string[] = [];
  try {
    const control = hybridControl(storage);
    const drivers = control?.drivers ?? {};
    const rows: (string | number)[][] = [];
    for (const [backend, driver] of Object.entries(drivers)) {
      for (const queue of ['__kst_hybrid_journal', '__kst_hybrid_journal_append']) {
        const stats = await driver!.queues.stats(queue);
        rows.push([`${backend} ${queue}`, stats.depth, stats.inFlight, stats.dead]);
      }
    }
    lines.push(table(['journal (mirrors waiting for replay)', 'waiting', 'replaying', 'dead'], rows));
    // One write through the hybrid, timed until the secondary holds it.
    const key = `__kst_hybrid:migrate-probe:${randomUUID()}`;
    const primary = config.hybrid.routing.cache;
    const secondary = primary === 'redis' ? 'postgresql' : 'redis';
    const started = Date.now();
    await storage.kv.set(key, started, { ttl: 60 });
    let seen = false;
    while (Date.now() - started < 10_000) {
      if ((await drivers[secondary]?.kv.get(key)) !== undefined) {
        seen = true;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const ms = Date.now() - started;
    lines.push(
      seen
        ? `a write mirrored from ${primary} to ${secondary} in ${ms} ms (this process; SyncLag in the functions' metrics is the deployment's)`
        : `a write did not reach ${secondary} within 10 s: the mirror is failing (see the SyncFailure metric)`,
    );
    await storage.kv.delete(key).catch(() => {});
    await control?.flush();
  } finally {
    await storage.close();
  }
  return { lines };
}

function nextSteps(config: StorageConfig, report: ValidationReport): string {
  const lines = ['what to switch next (hybrid.routing):'];
  for (const [type, backend] of Object.entries(config.hybrid.routing)) {
    const stores = TYPE_STORES[type] ?? [];
    if (backend === 'postgresql') {
      lines.push(`  ${type}: already on postgresql`);
      continue;
    }
    if (type === 'queues') {
      lines.push(
        '  queues: not dual-written (a message on both sides would be delivered twice). Switch it last: set ' +
          '`queues: postgresql`, deploy, then `migrate copy --only queues,dedup --move` brings over what is left on Redis',
      );
      continue;
    }
    if (type === 'pubsub') {
      lines.push(
        '  pubsub: connections are dual-written; event history is not. Run `migrate copy --only events` right before ' +
          "setting `pubsub: postgresql` (event ids continue, so subscribers' cursors stay valid)",
      );
      continue;
    }
    const bad = stores.filter((s) => report.stores[s] && !report.stores[s]!.ok);
    const checked = stores.reduce((n, s) => n + (report.stores[s]?.checked ?? 0), 0);
    lines.push(
      bad.length === 0
        ? `  ${type}: in step (${checked.toLocaleString('en-US')} checked, no mismatch) -> set \`${type}: postgresql\``
        : `  ${type}: not yet (${bad.map((s) => STORE_TITLES[s]).join(', ')} differ): run sync again`,
    );
  }
  lines.push(
    'keep dual-write on after switching: the mirror then keeps Redis current, so rolling back is setting the routing back.',
  );
  return lines.join('\n');
}

async function fixture(flags: Flags, io: CliIo): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...io.env };
  if (flags['redis-url']) env.REDIS_URL = flags['redis-url'];
  const config = loadConfig({ env, file: flags.config, cwd: io.cwd });
  checkUrl('redis', config.redis.url, ['redis:', 'rediss:'], '--redis-url or REDIS_URL');
  const positive = (text: string | undefined, fallback: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1 || value > 10_000_000)
      throw new UsageError(`expected a whole number from 1 to 10000000, got ${JSON.stringify(text)}`);
    return value;
  };
  const redis = createRedisClient(config, {
    retryStrategy: (times) => (times > 3 ? null : 200),
    maxRetriesPerRequest: 1,
  }) as Redis;
  let redisError: Error | undefined;
  redis.on('error', (error: Error) => {
    redisError = error;
  });
  try {
    await redis.ping().catch((error: Error) => {
      throw new DataMigrationInputError(
        `cannot reach Redis at ${redact(config.redis.url)}: ${(redisError ?? error).message}`,
      );
    });
    const manifest = await writeLegacyFixture(redis, {
      prefix: flags.prefix ?? '',
      sessions: positive(flags.sessions, 200),
      clusters: positive(flags.clusters, 5),
    });
    io.stdout.write(`${JSON.stringify({ counts: manifest.counts }, null, 2)}\n`);
    return 0;
  } finally {
    redis.disconnect();
  }
}

function statusText(job: {
  job: string;
  state: unknown;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
}): string {
  const state = job.state as {
    stores?: Record<string, { done?: boolean; read?: number }>;
    auditMark?: string | null;
  };
  const rows = Object.entries(state.stores ?? {}).map(([store, progress]) => [
    STORE_TITLES[store as StoreName] ?? store,
    progress.read ?? 0,
    progress.done ? 'done' : 'in progress',
  ]);
  return [
    job.job,
    `started ${job.startedAt}, last batch ${job.updatedAt}${job.finishedAt ? `, finished ${job.finishedAt}` : ' (not finished: `copy` resumes it)'}`,
    ...(rows.length ? ['', table(['store', 'read', 'state'], rows)] : []),
    ...(state.auditMark ? [`audit copied up to source entry ${state.auditMark}`] : []),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------

function isInputError(error: unknown): boolean {
  return (
    error instanceof UsageError || error instanceof DataMigrationInputError || error instanceof ConfigError
  );
}

/** One line for the errors the tool expects; a stack trace only for a bug. */
function describe(error: unknown): string {
  if (error instanceof UsageError || error instanceof DataMigrationInputError) return error.message;
  if (error instanceof ValidationInterrupted) return error.message;
  if (error instanceof ConfigError) return `invalid configuration: ${error.problems.join('; ')}`;
  const mapped = mapSqlError(error);
  if (mapped instanceof StorageError) {
    return `${mapped.message.replace(/\s*\n\s*/g, ' ')} — the copy stopped; its checkpoint is at the last written batch: run the same command again to resume`;
  }
  if (
    error instanceof Error &&
    /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|Connection is closed|max retries/i.test(error.message)
  ) {
    return `${error.message} — the copy stopped; its checkpoint is at the last written batch: run the same command again to resume`;
  }
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

export { duration };
