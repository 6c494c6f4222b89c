import type { Static, TSchema } from '@sinclair/typebox';
// A namespace import esbuild can tree-shake, and value functions by name: TypeBox's `Type` and
// `Value` objects hold every builder and value function, ~75 KB more in each bundled function.
import * as T from '@sinclair/typebox';
import { Errors, ValueErrorType } from '@sinclair/typebox/errors';
import { Default } from '@sinclair/typebox/value';
import { ConfigError } from '../errors.js';

const Seconds = (options: { default?: number; minimum?: number; maximum?: number } = {}) =>
  T.Number({ exclusiveMinimum: 0, ...options });
const Strict = { additionalProperties: false, default: {} } as const;

/** How long a write waits for `redis.waitForReplicas.replicas` by default, seconds. */
export const DEFAULT_REPLICA_WAIT_SECONDS = 0.5;

/** `host:port`, the host a name, an IPv4 address or a bracketed IPv6 address. */
const HOST_PORT = '^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:\\[\\]]+):[0-9]{1,5}$';

/** A backend that holds data of its own (the targets of hybrid routing and fallback). */
const DataBackend = (fallback?: 'redis' | 'postgresql') =>
  T.Union([T.Literal('redis'), T.Literal('postgresql')], fallback ? { default: fallback } : {});
export type DataBackend = 'redis' | 'postgresql';

/** Where each hybrid data type lives unless `hybrid.routing` says otherwise (the hybrid reads the resolved routing). */
export const DEFAULT_HYBRID_ROUTING = {
  sessions: 'postgresql',
  authentication: 'postgresql',
  audit: 'postgresql',
  queues: 'redis',
  cache: 'redis',
  pubsub: 'redis',
} as const satisfies Record<string, DataBackend>;

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
        /**
         * ioredis multiplexes every command over one connection, so there is no command pool:
         * this is the number of idle long-poll (BLPOP) connections kept for reuse. Unset: the
         * backend's own choice (4).
         */
        poolSize: T.Optional(T.Integer({ minimum: 1, maximum: 1000 })),
        /** Most connections one storage opens (commands, subscriber, long polls). Unset: no cap. */
        maxConnections: T.Optional(T.Integer({ minimum: 3, maximum: 10_000 })),
        /**
         * Redis Sentinel: `host:port` of each Sentinel. The primary is asked of them by
         * `sentinelName`, and asked again after a failover, so the process follows a promoted
         * replica without a restart. `url` then gives only the credentials, database and TLS.
         */
        sentinels: T.Optional(T.Array(T.String({ pattern: HOST_PORT }), { minItems: 1, maxItems: 16 })),
        /** The primary's name in the Sentinels' configuration (`sentinel monitor <name> …`). */
        sentinelName: T.String({ minLength: 1, default: 'mymaster' }),
        /** Password of the Sentinels themselves, when they require one. */
        sentinelPassword: T.Optional(T.String()),
        /**
         * Acknowledge a write only once `replicas` replicas hold it: `WAIT` after each write. A
         * write they do not confirm within `timeout` seconds fails with BackendUnavailableError
         * (not acknowledged: it may or may not survive a failover). Unset: a write is
         * acknowledged when the primary has it, and a failover can lose the last ones.
         */
        waitForReplicas: T.Optional(
          T.Object(
            {
              replicas: T.Integer({ minimum: 1, maximum: 100 }),
              // Optional so that a file may leave it out (the file's schema checks before defaults).
              timeout: T.Optional(
                Seconds({ default: DEFAULT_REPLICA_WAIT_SECONDS, minimum: 0.001, maximum: 60 }),
              ),
            },
            { additionalProperties: false },
          ),
        ),
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
        /**
         * Connections the pool keeps open once opened (pg-pool's `min`): idle ones above this
         * count are closed; it never opens connections ahead of use. At most `poolSize`.
         */
        minPoolSize: T.Integer({ minimum: 0, maximum: 100, default: 0 }),
        connectTimeout: Seconds({ default: 5, maximum: 60 }),
        /** A statement running longer fails with `BackendUnavailableError` (`statement_timeout`). */
        commandTimeout: Seconds({ default: 10, maximum: 600 }),
        /**
         * What sits between this service and PostgreSQL (docs/reliability.md). `none`: a direct
         * connection, or a pooler in session mode, where each connection keeps one server
         * session. `transaction`: a pooler that lends a server session per transaction
         * (PgBouncer `pool_mode = transaction`, a Neon `-pooler` endpoint, RDS Proxy): then
         * `listen` and `preparedStatements` default to off and no `statement_timeout` startup
         * parameter is sent (PgBouncer refuses it).
         */
        pooler: T.Union([T.Literal('none'), T.Literal('transaction')], { default: 'none' }),
        /**
         * Use LISTEN/NOTIFY to wake long polls and subscriptions. Needs a connection that keeps its
         * server session: off by default with `pooler: transaction`; polling then does it all.
         */
        listen: T.Boolean({ default: true }),
        /**
         * How a queue's lease writes commit (a receive's claim, ack, nack, extend): `async` does
         * not wait for the write-ahead log to reach disk (`synchronous_commit = off` for that
         * transaction only), so a server crash or failover can undo the last such writes of the
         * moment: the message is delivered again (at least once holds). `sync` waits, as every
         * other write does (a send always waits); the hybrid backend always does (its journal is a
         * PostgreSQL queue). docs/reliability.md says what each mode risks.
         */
        leaseCommit: T.Union([T.Literal('async'), T.Literal('sync')], { default: 'async' }),
        /** How often waits and subscriptions look again when no notification came. */
        pollInterval: Seconds({ default: 1, minimum: 0.01, maximum: 60 }),
        /**
         * Prepare each statement once per connection (`pg`, `neon`). Off by default with
         * `pooler: transaction`; on there only for a pooler that keeps protocol-level prepared
         * statements (PgBouncer 1.21+ with `max_prepared_statements`).
         */
        preparedStatements: T.Boolean({ default: true }),
        /** Apply pending migrations when the storage first connects (off: run `npm run migrate:schema`). */
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
    /** The hybrid backend: which backend holds each data type, fallback, dual-write. */
    hybrid: T.Object(
      {
        /** Data type → backend. `cache` is the kv store, `authentication` the tokens, `pubsub` the events. */
        routing: T.Object(
          {
            sessions: DataBackend(DEFAULT_HYBRID_ROUTING.sessions),
            authentication: DataBackend(DEFAULT_HYBRID_ROUTING.authentication),
            audit: DataBackend(DEFAULT_HYBRID_ROUTING.audit),
            queues: DataBackend(DEFAULT_HYBRID_ROUTING.queues),
            cache: DataBackend(DEFAULT_HYBRID_ROUTING.cache),
            pubsub: DataBackend(DEFAULT_HYBRID_ROUTING.pubsub),
          },
          Strict,
        ),
        /** When a data type's backend fails, serve it from the next backend in `order`. */
        fallback: T.Object(
          {
            enabled: T.Boolean({ default: true }),
            order: T.Array(DataBackend(), {
              minItems: 1,
              uniqueItems: true,
              default: ['redis', 'postgresql'],
            }),
            /** Seconds an operation may take before it counts as its backend's outage (long polls: on top of their wait). */
            timeout: Seconds({ default: 0.5, minimum: 0.05, maximum: 60 }),
          },
          Strict,
        ),
        /** Write each data type to both backends; `async`: the second write does not delay the answer. */
        sync: T.Object(
          { enabled: T.Boolean({ default: false }), async: T.Boolean({ default: true }) },
          Strict,
        ),
      },
      Strict,
    ),
    /** Moving data between backends (hybrid): dual-write, how often to reconcile, and checking. */
    migration: T.Object(
      {
        dualWrite: T.Boolean({ default: false }),
        syncInterval: Seconds({ default: 60, maximum: 86_400 }),
        validationEnabled: T.Boolean({ default: false }),
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
    /** The scheduled cleanup of expired data (`storage.sweep()`). */
    ttl: T.Object(
      {
        enabled: T.Boolean({ default: true }),
        /** Seconds between runs. */
        interval: Seconds({ default: 300, minimum: 1, maximum: 86_400 }),
        /** Rows (or keys) deleted per batch. */
        batchSize: T.Integer({ minimum: 1, maximum: 100_000, default: 1000 }),
      },
      Strict,
    ),
    /** The WebSocket relay (functions/runtime/relay.ts). */
    websocket: T.Object(
      {
        /** More subscribers than this on a channel and a publish hands the relay to the fanout function. */
        fanoutThreshold: T.Integer({ minimum: 0, maximum: 100_000, default: 50 }),
        /** Live WebSocket connections one token may hold; one more is refused at `$connect`. */
        maxConnectionsPerToken: T.Integer({ minimum: 1, maximum: 10_000, default: 10 }),
      },
      Strict,
    ),
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

/** Path segments that name secrets: their values never appear in a message. */
const SECRET = /^(password|url|bootstrapTokenHash|bootstrap_token_hash)$/;

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return `[${value.map((item) => show(item)).join(', ')}]`;
  if (typeof value === 'object') return 'a mapping';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/** Edit distance, for "did you mean" on unknown keys. */
function distance(a: string, b: string): number {
  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      // A swap of two neighbours is one edit (optimal string alignment).
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        current[j] = Math.min(current[j] ?? 0, (beforePrevious[j - 2] ?? 0) + 1);
      }
    }
    beforePrevious = previous;
    previous = current;
  }
  return previous[b.length] ?? 0;
}

const squash = (key: string) => key.toLowerCase().replaceAll(/[_-]/g, '');

/** The allowed key closest to `key` (same letters in another case style, or a typo or two). */
export function nearest(key: string, allowed: string[]): string | undefined {
  const exact = allowed.find((candidate) => squash(candidate) === squash(key));
  if (exact) return exact;
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.min(2, Math.floor(key.length / 3)));
  for (const candidate of allowed) {
    const d = distance(squash(key), squash(candidate));
    if (d <= bestDistance) {
      best = candidate;
      bestDistance = d - 1;
    }
  }
  return best;
}

interface SchemaError {
  type: ValueErrorType;
  schema: TSchema;
  path: string;
  value: unknown;
  message: string;
}

/** One readable sentence for a schema error (without the path). */
function describe(error: SchemaError, lastKey: string): string {
  const { schema, value } = error;
  const got = SECRET.test(lastKey) ? '' : `, got ${show(value)}`;
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      const allowed = Object.keys((schema.properties ?? {}) as object);
      const guess = nearest(lastKey, allowed);
      return `Unexpected property: not a setting${guess ? ` (did you mean ${guess}?)` : ''}; allowed here: ${allowed.join(', ')}`;
    }
    case ValueErrorType.Union: {
      const options = (schema.anyOf as TSchema[] | undefined) ?? [];
      if (options.every((option) => 'const' in option)) {
        return `must be one of ${options.map((option) => JSON.stringify(option.const)).join(', ')}${
          SECRET.test(lastKey) ? '' : `, got ${show(value)}`
        }`;
      }
      return `${error.message}${got}`;
    }
    case ValueErrorType.Integer:
      return `expected a whole number${got}`;
    case ValueErrorType.Number:
      return `expected a number${got}`;
    case ValueErrorType.Boolean:
      return `expected true or false${got}`;
    case ValueErrorType.String:
      return `expected a string${got}${typeof value === 'number' || typeof value === 'boolean' ? ' (quote it in YAML)' : ''}`;
    case ValueErrorType.Object:
      return `expected a mapping of keys to values${got}`;
    case ValueErrorType.Array:
      return `expected a list${got}`;
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return `must be at least ${schema.minimum}${got}`;
    case ValueErrorType.NumberExclusiveMinimum:
    case ValueErrorType.IntegerExclusiveMinimum:
      return `must be greater than ${schema.exclusiveMinimum}${got}`;
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMaximum:
      return `must be at most ${schema.maximum}${got}`;
    case ValueErrorType.StringMinLength:
      return schema.minLength === 1 ? 'must not be empty' : `must be at least ${schema.minLength} characters`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${schema.maxLength} characters${got}`;
    case ValueErrorType.StringPattern:
      return `must match /${schema.pattern}/${got}`;
    case ValueErrorType.ArrayMinItems:
      return `must list at least ${schema.minItems}`;
    case ValueErrorType.ArrayUniqueItems:
      return `must not name an item twice${got}`;
    case ValueErrorType.ArrayMaxItems:
      return `must list at most ${schema.maxItems}${got}`;
    default:
      return `${error.message}${got}`;
  }
}

/** Every problem in `value` against `schema`, as `path: message` lines. */
export function schemaProblems(schema: TSchema, value: unknown, root = ''): string[] {
  const problems: string[] = [];
  for (const error of Errors(schema, value)) {
    const path = `${root}${error.path.replaceAll('/', '.')}`.replace(/^\./, '') || '(root)';
    const lastKey = error.path.split('/').pop() ?? '';
    problems.push(`${path}: ${describe(error, lastKey)}`);
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
  const value = Default(StorageConfigSchema, structuredClone(input));
  const problems = schemaProblems(StorageConfigSchema, value);
  if (problems.length === 0) {
    applyPoolerDefaults(value as StorageConfig, input);
    problems.push(...crossFieldProblems(value as StorageConfig, input));
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return value as StorageConfig;
}

/**
 * A transaction pooler lends a server session for one transaction at a time: what a session
 * keeps (LISTEN, named prepared statements) is gone, or another client's, by the next statement.
 * So both are off behind one unless the configuration turns them on itself.
 */
function applyPoolerDefaults(config: StorageConfig, input: StorageConfigInput): void {
  const pg = config.postgresql;
  if (pg.pooler !== 'transaction') return;
  if (input.postgresql?.listen === undefined) pg.listen = false;
  if (input.postgresql?.preparedStatements === undefined) pg.preparedStatements = false;
}

function postgresUrlProblems(pg: StorageConfig['postgresql']): string[] {
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

function redisUrlProblems(url: string): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return ['redis.url: not a URL (REDIS_URL must look like redis://host:6379 or rediss://host:6380)'];
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    return [`redis.url: expected a redis:// or rediss:// URL (REDIS_URL), got ${parsed.protocol}//…`];
  }
  return [];
}

/** Settings that do not go together with cluster mode. */
function redisModeProblems(redis: StorageConfig['redis']): string[] {
  if (!redis.cluster) return [];
  const problems: string[] = [];
  if (redis.sentinels) {
    problems.push(
      'redis.sentinels: a Redis Cluster fails over by itself; set either redis.cluster or redis.sentinels',
    );
  }
  if (redis.waitForReplicas) {
    problems.push(
      'redis.waitForReplicas: not available with redis.cluster (WAIT must reach the node that took each write)',
    );
  }
  return problems;
}

/** The backends a configuration reaches: the backend itself, or for hybrid every one it routes, falls back or writes to. */
export function backendsUsed(config: StorageConfig): Set<DataBackend> {
  if (config.backend === 'memory') return new Set();
  if (config.backend !== 'hybrid') return new Set([config.backend]);
  const used = new Set<DataBackend>(Object.values(config.hybrid.routing));
  if (config.hybrid.fallback.enabled) for (const backend of config.hybrid.fallback.order) used.add(backend);
  if (config.hybrid.sync.enabled || config.migration.dualWrite) {
    used.add('redis');
    used.add('postgresql');
  }
  return used;
}

/** What one field cannot say alone: URLs the backends in use need, pool bounds, hybrid targets. */
function crossFieldProblems(config: StorageConfig, input: StorageConfigInput): string[] {
  const problems: string[] = [];
  const pg = config.postgresql;
  if (pg.minPoolSize > pg.poolSize) {
    problems.push(
      `postgresql.minPoolSize: must be at most postgresql.poolSize (${pg.poolSize}), got ${pg.minPoolSize}`,
    );
  }
  if (pg.pooler === 'transaction' && pg.listen) {
    // Prepared statements stay allowed: PgBouncer 1.21+ keeps protocol-level ones. LISTEN has no such pooler.
    problems.push(
      'postgresql.listen: true cannot work with postgresql.pooler: transaction (a LISTEN stays on a server ' +
        'session the pooler lends to other clients next); leave postgresql.listen unset or false',
    );
  }
  const used = backendsUsed(config);
  if (used.has('redis')) problems.push(...redisModeProblems(config.redis));
  if (used.has('postgresql')) problems.push(...postgresUrlProblems(pg));
  if (used.has('redis')) problems.push(...redisUrlProblems(config.redis.url));
  if (config.backend !== 'hybrid') return problems;

  // A hybrid reaches two servers: a default of localhost would hide a forgotten setting.
  const configured = (backend: DataBackend) =>
    backend === 'redis'
      ? (typeof input.redis?.url === 'string' && input.redis.url !== '') ||
        (input.redis?.sentinels?.length ?? 0) > 0
      : pg.driver === 'pglite' || (typeof pg.url === 'string' && pg.url !== '');
  const howTo: Record<DataBackend, string> = {
    redis: 'set redis.url or REDIS_URL',
    postgresql: 'set postgresql.url or DATABASE_URL, or postgresql.driver: pglite',
  };
  for (const [type, backend] of Object.entries(config.hybrid.routing)) {
    if (!configured(backend)) {
      problems.push(
        `hybrid.routing.${type}: routes to ${backend}, which has no connection settings (${howTo[backend]})`,
      );
    }
  }
  const { order, enabled } = config.hybrid.fallback;
  if (enabled) {
    for (const backend of new Set(order)) {
      if (!configured(backend)) {
        problems.push(
          `hybrid.fallback.order: falls back to ${backend}, which has no connection settings (${howTo[backend]})`,
        );
      }
    }
  }
  return problems;
}
