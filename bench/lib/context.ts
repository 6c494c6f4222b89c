/**
 * What every suite shares: the run's options and budget, the servers' URLs, names that keep
 * this run's data apart from everyone else's (Redis key prefix `kst:bench:<pid>:`, PostgreSQL
 * schemas `kst_bench_<pid>_<n>`), the storages under test, and the cleanup that removes them.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import type { StorageConfigInput } from '../../lib/config/index.js';
import { type CreateStorageOptions, createStorage, type Storage } from '../../lib/storage/index.js';
import { startNeonProxy } from '../../local/neon-proxy.js';
import type { Budget } from './measure.js';
import type { BenchResults } from './results.js';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** Connections each PostgreSQL pool may open: the concurrency-8 rows use all 8, on the library and the raw side alike. */
export const PG_POOL = 8;

/** Options for `createStorage`, made from the configuration the storage gets (its schema, say). */
export type StorageOptionsFor = (config: StorageConfigInput) => Promise<CreateStorageOptions>;

export type BackendName = 'memory' | 'redis' | 'postgresql (pg)' | 'postgresql (neon)' | 'hybrid';
export const BACKENDS: BackendName[] = ['redis', 'postgresql (pg)', 'postgresql (neon)', 'hybrid', 'memory'];

export interface Options {
  quick: boolean;
  /** Run only these suites (default: all). */
  only: string[] | undefined;
  /** The matrix measures only these backends (default: all). */
  backends: BackendName[] | undefined;
  /** Zips from an earlier `serverless package` instead of packaging now. */
  bundles: string | undefined;
  /** Where the results, report and chart go. */
  out: string;
}

export class Context {
  readonly prefix = `kst:bench:${process.pid}:`;
  readonly budget: Budget;
  private schemaCount = 0;
  private prefixCount = 0;
  private readonly schemas: string[] = [];
  private readonly cleanups: (() => Promise<unknown>)[] = [];
  private neonProxy: Promise<{ wsProxy: string; close(): Promise<void> }> | undefined;
  redisUp = false;
  pgUp = false;

  constructor(
    readonly options: Options,
    readonly results: BenchResults,
  ) {
    this.budget = options.quick
      ? { warmup: 30, iterations: 300, maxMs: 150, reps: 1 }
      : { warmup: 100, iterations: 3000, maxMs: 350, reps: 3 };
  }

  log(message: string): void {
    process.stderr.write(`${message}\n`);
  }

  /** Counts a suite part as not run, with the reason, in the results and on the terminal. */
  skip(what: string, why: string): void {
    this.results.meta.skipped.push(`${what}: ${why}`);
    this.log(`  skipped ${what}: ${why}`);
  }

  /** Registers `fn` to run at the end, last registered first. */
  defer(fn: () => Promise<unknown>): void {
    this.cleanups.push(fn);
  }

  /** A fresh schema name of this run, dropped at the end. */
  schema(): string {
    const name = `kst_bench_${process.pid}_${this.schemaCount++}`;
    this.schemas.push(name);
    return name;
  }

  async probe(): Promise<void> {
    const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1500, maxRetriesPerRequest: 0 });
    redis.on('error', () => {});
    try {
      await redis.connect();
      this.redisUp = (await redis.ping()) === 'PONG';
      this.results.meta.versions.redis = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
    } catch {
      this.redisUp = false;
    } finally {
      redis.disconnect();
    }
    const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 1500 });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query('SHOW server_version');
      this.results.meta.versions.postgresql = String(rows[0]?.server_version ?? '?');
      this.pgUp = true;
    } catch {
      this.pgUp = false;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Why `backend` cannot run here, or undefined. */
  unavailable(backend: BackendName): string | undefined {
    const needsRedis = backend === 'redis' || backend === 'hybrid';
    const needsPg = backend.startsWith('postgresql') || backend === 'hybrid';
    if (needsRedis && !this.redisUp) return `no Redis at ${REDIS_URL}`;
    if (needsPg && !this.pgUp) return `no PostgreSQL at ${DATABASE_URL}`;
    return undefined;
  }

  /** The local WebSocket proxy the Neon driver reaches PostgreSQL through, started once, in this process. */
  async wsProxy(): Promise<string> {
    this.neonProxy ??= startNeonProxy().then((proxy) => {
      this.defer(() => proxy.close());
      return proxy;
    });
    return (await this.neonProxy).wsProxy;
  }

  /** A new storage of `backend` with its own key prefix / schema; closed at the end. */
  async storage(
    backend: BackendName,
    overrides: StorageConfigInput = {},
    options?: StorageOptionsFor,
  ): Promise<Storage> {
    return (await this.storageWithNames(backend, overrides, options)).storage;
  }

  /** `storage()` with the Redis key prefix and PostgreSQL schema it uses (for loading data around the library). */
  async storageWithNames(
    backend: BackendName,
    overrides: StorageConfigInput = {},
    options?: StorageOptionsFor,
  ): Promise<{ storage: Storage; keyPrefix: string; schema: string }> {
    const keyPrefix = `${this.prefix}${this.prefixCount++}:`;
    const schema = this.schema();
    const postgresql = (driver: 'pg' | 'neon', wsProxy?: string): StorageConfigInput['postgresql'] => ({
      driver,
      url: DATABASE_URL,
      schema,
      migrate: true,
      poolSize: PG_POOL,
      ...(wsProxy ? { wsProxy } : {}),
    });
    let config: StorageConfigInput;
    switch (backend) {
      case 'memory':
        config = { backend: 'memory' };
        break;
      case 'redis':
        config = { backend: 'redis', keyPrefix, redis: { url: REDIS_URL } };
        break;
      case 'postgresql (pg)':
        config = { backend: 'postgresql', postgresql: postgresql('pg') };
        break;
      case 'postgresql (neon)':
        config = { backend: 'postgresql', postgresql: postgresql('neon', await this.wsProxy()) };
        break;
      case 'hybrid':
        config = { backend: 'hybrid', keyPrefix, redis: { url: REDIS_URL }, postgresql: postgresql('pg') };
        break;
    }
    const storage = createStorage({ ...config, ...overrides }, await options?.({ ...config, ...overrides }));
    this.defer(() => storage.close());
    // Connect and migrate before anything is timed.
    await storage.health();
    return { storage, keyPrefix, schema };
  }

  /** A raw ioredis client, disconnected at the end. */
  redis(): Redis {
    const client = new Redis(REDIS_URL);
    this.defer(async () => client.disconnect());
    return client;
  }

  /** A raw `pg` pool of PG_POOL connections, ended at the end. */
  pgPool(max = PG_POOL): pg.Pool {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max });
    pool.on('error', () => {});
    this.defer(() => pool.end());
    return pool;
  }

  /** Closes everything, then deletes this run's Redis keys (SCAN + UNLINK) and drops its schemas. */
  async cleanup(): Promise<void> {
    for (const fn of this.cleanups.splice(0).reverse()) {
      await fn().catch((error: unknown) => this.log(`  cleanup: ${(error as Error).message}`));
    }
    if (this.redisUp) {
      const client = new Redis(REDIS_URL);
      try {
        let cursor = '0';
        do {
          const [next, keys] = await client.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 5000);
          cursor = next;
          if (keys.length > 0) await client.unlink(...keys);
        } while (cursor !== '0');
      } finally {
        client.disconnect();
      }
    }
    if (this.pgUp && this.schemas.length > 0) {
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      try {
        for (const schema of this.schemas.splice(0))
          await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        // Schemas made by peers (pg-boss) in this run.
        const { rows } = await client.query(
          `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'kst_bench_${process.pid}_%'`,
        );
        for (const row of rows) await client.query(`DROP SCHEMA IF EXISTS "${row.nspname}" CASCADE`);
      } finally {
        await client.end();
      }
    }
  }
}
