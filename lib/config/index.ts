import { type Static, Type as T, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ConfigError } from '../errors.js';
import { globMatcher } from '../glob.js';

const Seconds = (options: { default?: number; minimum?: number; maximum?: number } = {}) =>
  T.Number({ exclusiveMinimum: 0, ...options });
const Strict = { additionalProperties: false, default: {} } as const;

/** The resolved configuration every backend is built from. Durations are seconds. */
export const StorageConfigSchema = T.Object(
  {
    backend: T.Union(
      [T.Literal('memory'), T.Literal('redis'), T.Literal('postgresql'), T.Literal('hybrid')],
      {
        default: 'memory',
      },
    ),
    /** Prefix of every Redis key (and the hash tags built from it). */
    keyPrefix: T.String({ minLength: 1, maxLength: 64, pattern: '^[^{}\\s]+$', default: 'kubently:' }),
    redis: T.Object(
      {
        url: T.String({ default: 'redis://127.0.0.1:6379' }),
        /** Connect as a Redis Cluster client (ElastiCache cluster mode); `url` is a seed node. */
        cluster: T.Boolean({ default: false }),
        /** Force TLS even for `redis://` URLs (a `rediss://` URL always uses TLS). */
        tls: T.Boolean({ default: false }),
        password: T.Optional(T.String()),
        connectTimeout: Seconds({ default: 5, maximum: 60 }),
        commandTimeout: Seconds({ default: 5, maximum: 60 }),
        /** Retries of one command while reconnecting before it fails with `BackendUnavailableError`. */
        maxRetriesPerRequest: T.Integer({ minimum: 0, maximum: 20, default: 2 }),
      },
      Strict,
    ),
    postgresql: T.Object(
      {
        /** Connection URL (`postgres://user:pass@host:5432/db`); required for the `pg` and `neon` drivers. */
        url: T.Optional(T.String()),
        /** `neon`: the Neon WebSocket Pool; `pg`: node-postgres (RDS, Aurora, any Postgres); `pglite`: embedded WASM Postgres. */
        driver: T.Union([T.Literal('pg'), T.Literal('neon'), T.Literal('pglite')], { default: 'pg' }),
        /** Schema holding the tables; every statement names it, so no `search_path` is needed. */
        schema: T.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,62}$', default: 'kubently' }),
        /** Connections per container (a Lambda container serves one request at a time: keep it small). */
        poolSize: T.Integer({ minimum: 1, maximum: 100, default: 5 }),
        connectTimeout: Seconds({ default: 5, maximum: 60 }),
        /** A statement running longer fails with `BackendUnavailableError` (`statement_timeout`). */
        commandTimeout: Seconds({ default: 10, maximum: 600 }),
        /**
         * Use LISTEN/NOTIFY to wake long polls and subscriptions. Needs a direct (unpooled)
         * connection: turn it off behind PgBouncer or a Neon `-pooler` endpoint; polling then does it all.
         */
        listen: T.Boolean({ default: true }),
        /** How often waits and subscriptions look again when no notification came. */
        pollInterval: Seconds({ default: 1, minimum: 0.01, maximum: 60 }),
        /**
         * Prepare each statement once per connection (`pg`, `neon`). Off for a connection pooler
         * that cannot keep prepared statements (PgBouncer before 1.21 in transaction mode).
         */
        preparedStatements: T.Boolean({ default: true }),
        /** Apply pending migrations when the storage first connects (off: run `npm run migrate`). */
        migrate: T.Boolean({ default: false }),
        /** PGlite data directory; omitted: in memory (lost with the process). */
        dataDir: T.Optional(T.String({ minLength: 1 })),
        /** Neon driver: WebSocket proxy (`host:port/v1`) for a Postgres without Neon's proxy, e.g. local. */
        wsProxy: T.Optional(T.String({ minLength: 1 })),
        /** Neon driver: `wss://` to the proxy. Unset: on, except for a proxy on this machine (127.0.0.1, localhost, ::1). */
        secureWebSocket: T.Optional(T.Boolean()),
      },
      Strict,
    ),
    limits: T.Object(
      {
        maxValueBytes: T.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, default: 256 * 1024 }),
      },
      Strict,
    ),
    sessions: T.Object({ defaultTtl: Seconds({ default: 300, maximum: 315_360_000 }) }, Strict),
    queues: T.Object(
      {
        maxAttempts: T.Integer({ minimum: 1, maximum: 1000, default: 5 }),
        dedupWindow: Seconds({ default: 300, maximum: 86_400 }),
      },
      Strict,
    ),
    events: T.Object(
      {
        /** Events kept per channel. */
        maxHistory: T.Integer({ minimum: 1, maximum: 1_000_000, default: 1000 }),
        /** Per-channel overrides: glob pattern → events kept; the first matching pattern wins. */
        maxHistoryByChannel: T.Record(T.String(), T.Integer({ minimum: 1, maximum: 1_000_000 }), {
          default: {},
        }),
      },
      Strict,
    ),
    audit: T.Object(
      {
        maxEntries: T.Integer({ minimum: 1, maximum: 100_000_000, default: 100_000 }),
        maxAge: Seconds({ default: 90 * 86_400, maximum: 315_360_000 }),
      },
      Strict,
    ),
    auth: T.Object(
      {
        /** Hex SHA-256 of a bootstrap admin token (the plain token never appears in config). */
        bootstrapTokenHash: T.Optional(T.String({ pattern: '^[0-9a-fA-F]{64}$' })),
      },
      Strict,
    ),
    ttl: T.Object({ batchSize: T.Integer({ minimum: 1, maximum: 100_000, default: 1000 }) }, Strict),
  },
  { additionalProperties: false },
);

export type StorageConfig = Static<typeof StorageConfigSchema>;

type DeepPartial<V> = V extends readonly unknown[]
  ? V
  : V extends object
    ? { [K in keyof V]?: DeepPartial<V[K]> }
    : V;
export type StorageConfigInput = DeepPartial<StorageConfig>;

/** Every problem in `value` against `schema`, as `path: message` lines. */
export function schemaProblems(schema: TSchema, value: unknown, root = ''): string[] {
  const problems: string[] = [];
  for (const error of Value.Errors(schema, value)) {
    const path = `${root}${error.path.replaceAll('/', '.')}`.replace(/^\./, '') || '(root)';
    const allowed = error.schema.anyOf
      ? ` (allowed: ${(error.schema.anyOf as TSchema[]).map((s) => JSON.stringify(s.const)).join(', ')})`
      : '';
    problems.push(`${path}: ${error.message}${allowed}`);
  }
  // A union failing reports once per branch too; keep the first line per path.
  const seen = new Set<string>();
  return problems.filter((line) => {
    const path = line.slice(0, line.indexOf(':'));
    if (seen.has(path)) return false;
    seen.add(path);
    return true;
  });
}

/** Fills defaults and validates; throws `ConfigError` listing every bad field. */
export function resolveConfig(input: StorageConfigInput = {}): StorageConfig {
  const value = Value.Default(StorageConfigSchema, structuredClone(input));
  const problems = schemaProblems(StorageConfigSchema, value);
  if (problems.length === 0) problems.push(...crossFieldProblems(value as StorageConfig));
  if (problems.length > 0) throw new ConfigError(problems);
  return value as StorageConfig;
}

/** What one field cannot say alone: a URL the chosen driver needs. */
function crossFieldProblems(config: StorageConfig): string[] {
  const pg = config.postgresql;
  if (config.backend !== 'postgresql' && config.backend !== 'hybrid') return [];
  if (pg.driver === 'pglite') return [];
  if (pg.url === undefined || pg.url === '') {
    return [
      `postgresql.url: required for driver ${pg.driver} (set DATABASE_URL to postgres://user:password@host:5432/database)`,
    ];
  }
  let url: URL;
  try {
    url = new URL(pg.url);
  } catch {
    return [
      'postgresql.url: not a URL (DATABASE_URL must look like postgres://user:password@host:5432/database)',
    ];
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return [
      `postgresql.url: expected a postgres:// or postgresql:// URL (DATABASE_URL), got ${url.protocol}//…`,
    ];
  }
  return [];
}

function numberFrom(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new ConfigError([`${name}: expected a number, got ${JSON.stringify(raw)}`]);
  return n;
}

/**
 * Configuration from the environment, as Lambda sets it: `STORAGE_BACKEND`, `REDIS_URL`,
 * `REDIS_CLUSTER`, `KEY_PREFIX`, `DATABASE_URL`, `POSTGRES_DRIVER`, `POSTGRES_SCHEMA`, `NEON_WS_PROXY`, `BOOTSTRAP_TOKEN_HASH`, `MAX_VALUE_BYTES`, `QUEUE_MAX_ATTEMPTS`, `SESSION_DEFAULT_TTL`.
 */
export function configFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  base: StorageConfigInput = {},
): StorageConfig {
  const input = structuredClone(base) as Record<string, Record<string, unknown> | unknown>;
  const section = (name: string) => {
    const current = input[name];
    if (current && typeof current === 'object') return current as Record<string, unknown>;
    const created: Record<string, unknown> = {};
    input[name] = created;
    return created;
  };
  if (env.STORAGE_BACKEND) input.backend = env.STORAGE_BACKEND;
  if (env.KEY_PREFIX) input.keyPrefix = env.KEY_PREFIX;
  if (env.BOOTSTRAP_TOKEN_HASH) section('auth').bootstrapTokenHash = env.BOOTSTRAP_TOKEN_HASH;
  if (env.REDIS_URL) section('redis').url = env.REDIS_URL;
  if (env.DATABASE_URL) section('postgresql').url = env.DATABASE_URL;
  if (env.POSTGRES_DRIVER) section('postgresql').driver = env.POSTGRES_DRIVER;
  if (env.POSTGRES_SCHEMA) section('postgresql').schema = env.POSTGRES_SCHEMA;
  if (env.NEON_WS_PROXY) section('postgresql').wsProxy = env.NEON_WS_PROXY;
  if (env.REDIS_CLUSTER) section('redis').cluster = env.REDIS_CLUSTER === 'true' || env.REDIS_CLUSTER === '1';
  const maxValueBytes = numberFrom(env, 'MAX_VALUE_BYTES');
  if (maxValueBytes !== undefined) section('limits').maxValueBytes = maxValueBytes;
  const maxAttempts = numberFrom(env, 'QUEUE_MAX_ATTEMPTS');
  if (maxAttempts !== undefined) section('queues').maxAttempts = maxAttempts;
  const sessionTtl = numberFrom(env, 'SESSION_DEFAULT_TTL');
  if (sessionTtl !== undefined) section('sessions').defaultTtl = sessionTtl;
  return resolveConfig(input as StorageConfigInput);
}

/** Events kept on `channel`: the first `events.maxHistoryByChannel` glob it matches, else `events.maxHistory`. */
export function maxHistoryFor(config: StorageConfig): (channel: string) => number {
  const rules = Object.entries(config.events.maxHistoryByChannel).map(
    ([pattern, limit]) => [globMatcher(pattern), limit] as const,
  );
  if (rules.length === 0) return () => config.events.maxHistory;
  return (channel) => rules.find(([matches]) => matches(channel))?.[1] ?? config.events.maxHistory;
}
