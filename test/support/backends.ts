/**
 * The backends the conformance suite runs on. Each entry says how to build a Storage, whether
 * the backend is reachable here, what it cannot do (capabilities), and how to remove what the
 * tests wrote.
 *
 * `CONFORMANCE_BACKENDS=memory,redis` narrows the run to the named backends.
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { Cluster, Redis } from 'ioredis';
import { resolveConfig, type StorageConfigInput } from '../../lib/config/index.js';
import type { BackendName, DataType, HybridOptions } from '../../lib/storage/hybrid/index.js';
import { createStorage } from '../../lib/storage/index.js';
import { createSql, quoteIdent } from '../../lib/storage/postgresql/sql.js';
import type { Storage } from '../../lib/storage/types.js';
import { startNeonProxy } from '../../local/neon-proxy.js';
import { type PgBouncer, pgbouncerUnavailable, startPgBouncer } from './servers/pgbouncer.js';
import { CLUSTER_URL, startRedisCluster, stopRedisCluster } from './servers/redis-cluster.js';

/**
 * What a backend can do. Every toggle is true unless a backend truly cannot do the thing; a
 * test that needs a toggle which is off shows up as skipped with `[needs capability …]` in its
 * title, never disappears.
 */
export interface Capabilities {
  /** `events.subscribe` delivers live events (needs a long-lived connection: Redis pub/sub or Postgres LISTEN). */
  subscribe: boolean;
  /** `queues.receive({ wait })` long-polls and wakes up when a message is sent meanwhile. */
  longPoll: boolean;
  /** Many concurrent receivers on one queue get every message exactly once (a 2,000-message run). */
  concurrentReceivers: boolean;
  /** The connection pools `storage.pools()` reports (none for memory and PGlite: no pool to report). */
  pools: readonly ('redis' | 'postgresql')[];
}

export interface Backend {
  /** Shown in every test title: `conformance [name] > …`. */
  name: string;
  /** What `storage.backend` and `health().backend` answer. */
  kind: 'memory' | 'redis' | 'postgresql' | 'hybrid';
  capabilities: Capabilities;
  /** `undefined` when the backend can be used here, else why not (e.g. nothing listening at the URL). */
  available(): Promise<string | undefined>;
  /**
   * A new Storage. `overrides` is merged over the suite's config (e.g. `{ queues: { maxAttempts: 2 } }`).
   * Each Storage sees its own data where the backend allows it (a fresh Redis key prefix).
   */
  create(overrides?: StorageConfigInput): Storage;
  /** Deletes everything the storages created by `create` wrote. Does not close them. */
  cleanup(): Promise<void>;
}

const ALL: Omit<Capabilities, 'pools'> = { subscribe: true, longPoll: true, concurrentReceivers: true };

function withBackend(
  overrides: StorageConfigInput | undefined,
  base: StorageConfigInput,
): StorageConfigInput {
  return {
    ...overrides,
    ...base,
    redis: { ...overrides?.redis, ...base.redis },
    postgresql: { ...overrides?.postgresql, ...base.postgresql },
  };
}

export const memoryBackend: Backend = {
  name: 'memory',
  kind: 'memory',
  capabilities: { ...ALL, pools: [] },
  available: async () => undefined,
  create: (overrides) => createStorage({ ...overrides, backend: 'memory' }),
  // Memory storages vanish with the process.
  cleanup: async () => {},
};

interface RedisVariant {
  name: string;
  url: string;
  /** Connect as a Redis Cluster client. */
  cluster?: boolean;
  /** Brings the server up when the tests own it; answers why it cannot, or undefined. */
  start?: () => Promise<string | undefined>;
  /** Stops what `start` brought up, after cleanup. */
  stop?: () => Promise<void>;
}

export function redisBackend(variant: RedisVariant = defaultRedis()): Backend {
  const { url, cluster = false } = variant;
  const prefixes: string[] = [];
  const run = randomBytes(4).toString('hex');
  const connect = () =>
    cluster
      ? new Cluster([url], { redisOptions: { maxRetriesPerRequest: 1 } })
      : new Redis(url, { maxRetriesPerRequest: 1 });
  return {
    name: variant.name,
    kind: 'redis',
    capabilities: { ...ALL, pools: ['redis'] },
    async available() {
      const started = await variant.start?.();
      if (started !== undefined) return started;
      const client = new Redis(url, {
        lazyConnect: true,
        connectTimeout: 1500,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        retryStrategy: () => null,
      });
      // The socket error (ECONNREFUSED, ENOTFOUND…) says more than the "Connection is closed" that connect() rejects with.
      let socketError: Error | undefined;
      client.on('error', (error: Error) => {
        socketError ??= error;
      });
      try {
        await client.connect();
        const pong = await client.ping();
        return pong === 'PONG' ? undefined : `Redis at ${url} answered PING with ${pong}`;
      } catch (error) {
        const cause = socketError ?? error;
        return `no Redis at ${url} (${cause instanceof Error ? cause.message : String(cause)})`;
      } finally {
        client.disconnect();
      }
    },
    create(overrides) {
      // A fresh prefix per Storage: runs (and tests that need a pristine store) never collide.
      const keyPrefix = `kst:test:${run}${randomBytes(4).toString('hex')}:`;
      prefixes.push(keyPrefix);
      return createStorage(withBackend(overrides, { backend: 'redis', keyPrefix, redis: { url, cluster } }));
    },
    async cleanup() {
      try {
        if (prefixes.length > 0) await deleteKeys(connect(), prefixes.splice(0));
      } finally {
        await variant.stop?.();
      }
    },
  };
}

/** Deletes every key under `prefixes`, on every primary of a cluster, then disconnects. */
async function deleteKeys(client: Redis | Cluster, prefixes: string[]): Promise<void> {
  try {
    const nodes = client instanceof Cluster ? client.nodes('master') : [client];
    for (const node of nodes) {
      for (const prefix of prefixes) {
        // Every key the backend writes starts with keyPrefix; the prefix is hex, so no glob escaping.
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
          cursor = next;
          // One UNLINK per key: keys of different slots cannot share a command on a cluster.
          await Promise.all(keys.map((key) => node.unlink(key)));
        } while (cursor !== '0');
      }
    }
  } finally {
    client.disconnect();
  }
}

function defaultRedis(): RedisVariant {
  return { name: 'redis', url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' };
}

/**
 * A three-primary Redis Cluster the tests start from the local redis-server and stop after
 * (test/support/servers/redis-cluster.ts): proves every script and multi-key command is cluster-safe.
 * `REDIS_CLUSTER_URL` points the suite at an existing cluster instead.
 */
function clusterRedis(): RedisVariant {
  const external = process.env.REDIS_CLUSTER_URL;
  if (external) return { name: 'redis-cluster', url: external, cluster: true };
  let startedHere = false;
  return {
    name: 'redis-cluster',
    url: CLUSTER_URL,
    cluster: true,
    async start() {
      const result = await startRedisCluster();
      startedHere = result.started;
      return result.unavailable;
    },
    async stop() {
      if (startedHere) await stopRedisCluster();
    },
  };
}

interface PostgresVariant {
  name: string;
  driver: 'pg' | 'neon' | 'pglite';
  /** LISTEN/NOTIFY as wake-up (off: everything by polling, as behind a pooled endpoint). */
  listen?: boolean;
  /**
   * Through a PgBouncer in transaction mode that the suite starts in front of the test database
   * (test/support/servers/pgbouncer.ts), configured with `postgresql.pooler: transaction`.
   */
  pgbouncer?: { poolSize: number };
}

/** The Postgres the `pg` and `neon` variants use: `DATABASE_URL`, else the local server's `test` database. */
export function testDatabaseUrl(): string {
  return process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
}

/**
 * A PostgreSQL backend variant. Every `create()` gets its own schema (`kst_<run>_<n>`), migrated
 * by the storage itself on first use (`postgresql.migrate: true`), so runs and tests never
 * collide; `cleanup()` drops them. The Neon variant talks through a local WebSocket proxy it
 * starts itself (local/neon-proxy.ts); the PGlite variant shares one in-process database.
 */
export function postgresBackend(variant: PostgresVariant): Backend {
  const direct = variant.driver === 'pglite' ? undefined : testDatabaseUrl();
  const run = randomBytes(3).toString('hex');
  const schemas: string[] = [];
  let pglite: PGlite | undefined;
  let proxy: Awaited<ReturnType<typeof startNeonProxy>> | undefined;
  let bouncer: PgBouncer | undefined;
  const base = (): StorageConfigInput['postgresql'] => ({
    driver: variant.driver,
    url: bouncer?.url ?? direct,
    ...(variant.pgbouncer ? { pooler: 'transaction' } : { listen: variant.listen ?? true }),
    wsProxy: proxy?.wsProxy,
    connectTimeout: 3,
  });
  const admin = () =>
    createSql(resolveConfig({ postgresql: { ...base(), listen: false } }).postgresql, {
      pglite: { instance: pglite },
    });
  return {
    name: variant.name,
    kind: 'postgresql',
    capabilities: { ...ALL, pools: variant.driver === 'pglite' ? [] : ['postgresql'] },
    async available() {
      try {
        if (variant.driver === 'pglite') {
          pglite ??= await PGlite.create();
          return undefined;
        }
        if (variant.driver === 'neon') proxy ??= await startNeonProxy();
        if (variant.pgbouncer && !bouncer) {
          const missing = pgbouncerUnavailable();
          if (missing) return missing;
          bouncer = await startPgBouncer({ target: direct!, poolSize: variant.pgbouncer.poolSize });
        }
        const sql = await admin();
        try {
          await sql.query('SELECT 1');
          return undefined;
        } finally {
          await sql.close();
        }
      } catch (error) {
        const cause = error instanceof AggregateError ? error.errors[0] : error;
        const via = bouncer ? ` through PgBouncer at ${bouncer.url}` : '';
        return `no PostgreSQL at ${direct}${via} via ${variant.driver} (${cause instanceof Error ? cause.message : String(cause)})`;
      }
    },
    create(overrides) {
      const schema = `kst_${run}_${schemas.length}`;
      schemas.push(schema);
      return createStorage(
        withBackend(overrides, { backend: 'postgresql', postgresql: { ...base(), schema, migrate: true } }),
        { postgresql: { pglite } },
      );
    },
    async cleanup() {
      try {
        if (schemas.length > 0) {
          const sql = await admin();
          try {
            for (const schema of schemas.splice(0))
              await sql.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
          } finally {
            await sql.close();
          }
        }
      } finally {
        await proxy?.close();
        proxy = undefined;
        await bouncer?.stop();
        bouncer = undefined;
        await pglite?.close();
        pglite = undefined;
      }
    },
  };
}

interface HybridVariant {
  name: string;
  /** Data type → backend (unset: the seed's defaults). */
  routing?: Partial<Record<DataType, BackendName>>;
  /** `hybrid.fallback` of the configuration (unset: its defaults, on). */
  fallback?: { enabled: boolean };
  /** Passed to createStorage as `options.hybrid`. */
  options?: HybridOptions;
}

export const everyType = (backend: BackendName): Record<DataType, BackendName> => ({
  sessions: backend,
  authentication: backend,
  audit: backend,
  queues: backend,
  cache: backend,
  pubsub: backend,
});

/**
 * The hybrid backend over the local Redis (`REDIS_URL`) and PostgreSQL (`DATABASE_URL`, node-postgres):
 * each `create()` gets its own Redis key prefix and its own schema, as the redis and pg variants do,
 * and `cleanup()` removes both.
 */
export function hybridBackend(variant: HybridVariant): Backend {
  const redisSide = redisBackend(defaultRedis());
  const pgSide = postgresBackend({ name: `${variant.name}-pg`, driver: 'pg' });
  const url = defaultRedis().url;
  const prefixes: string[] = [];
  const run = randomBytes(3).toString('hex');
  const schemas: string[] = [];
  return {
    name: variant.name,
    kind: 'hybrid',
    capabilities: {
      ...ALL,
      pools: variant.routing ? [...new Set(Object.values(variant.routing))] : ['redis', 'postgresql'],
    },
    async available() {
      return (await redisSide.available()) ?? (await pgSide.available());
    },
    create(overrides) {
      const keyPrefix = `kst:test:h${run}${randomBytes(4).toString('hex')}:`;
      prefixes.push(keyPrefix);
      const schema = `kst_h${run}_${schemas.length}`;
      schemas.push(schema);
      return createStorage(
        withBackend(overrides, {
          backend: 'hybrid',
          keyPrefix,
          redis: { url },
          postgresql: { driver: 'pg', url: testDatabaseUrl(), schema, migrate: true, connectTimeout: 3 },
          hybrid: { routing: variant.routing, fallback: variant.fallback },
        }),
        { hybrid: variant.options },
      );
    },
    async cleanup() {
      if (prefixes.length > 0)
        await deleteKeys(new Redis(url, { maxRetriesPerRequest: 1 }), prefixes.splice(0));
      if (schemas.length > 0) {
        const sql = await createSql(
          resolveConfig({ postgresql: { driver: 'pg', url: testDatabaseUrl(), listen: false } }).postgresql,
        );
        try {
          for (const schema of schemas.splice(0))
            await sql.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
        } finally {
          await sql.close();
        }
      }
    },
  };
}

/** Every backend the suite knows, in the order they run. */
export function allBackends(): Backend[] {
  return [
    memoryBackend,
    redisBackend(),
    redisBackend(clusterRedis()),
    postgresBackend({ name: 'postgresql-pg', driver: 'pg' }),
    postgresBackend({ name: 'postgresql-neon', driver: 'neon' }),
    postgresBackend({ name: 'postgresql-pglite', driver: 'pglite' }),
    postgresBackend({ name: 'postgresql-pg-poll', driver: 'pg', listen: false }),
    postgresBackend({
      name: 'postgresql-pg-via-pgbouncer-transaction',
      driver: 'pg',
      pgbouncer: { poolSize: 20 },
    }),
    // The seed's routing with fallback and the cache on; a generous operation deadline, because a
    // spurious timeout on a loaded machine would (correctly) fail over and change what the test reads.
    hybridBackend({ name: 'hybrid', options: { operationTimeoutMs: 5000 } }),
    hybridBackend({
      name: 'hybrid-redis',
      routing: everyType('redis'),
      options: { fallback: { enabled: false } },
    }),
    hybridBackend({
      name: 'hybrid-postgresql',
      routing: everyType('postgresql'),
      options: { fallback: { enabled: false } },
    }),
  ];
}

/** The backends selected by `CONFORMANCE_BACKENDS` (default: all). */
export function selectedBackends(): Backend[] {
  const all = allBackends();
  const wanted = process.env.CONFORMANCE_BACKENDS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!wanted || wanted.length === 0) return all;
  const unknown = wanted.filter((name) => !all.some((b) => b.name === name));
  if (unknown.length > 0) {
    throw new Error(
      `CONFORMANCE_BACKENDS names unknown backends: ${unknown.join(', ')} (known: ${all.map((b) => b.name).join(', ')})`,
    );
  }
  return all.filter((b) => wanted.includes(b.name));
}

/** How to get the backend running, appended to a skip reason. */
export function installHint(backend: Backend): string {
  switch (backend.kind) {
    case 'redis':
      return 'install redis-server or set REDIS_URL';
    case 'postgresql':
      return backend.name.includes('pgbouncer')
        ? 'apt-get install pgbouncer, and set DATABASE_URL or start local Postgres'
        : 'set DATABASE_URL or start local Postgres';
    case 'hybrid':
      return 'needs both: install redis-server or set REDIS_URL, and set DATABASE_URL or start local Postgres';
    default:
      return 'see test/support/backends.ts';
  }
}
