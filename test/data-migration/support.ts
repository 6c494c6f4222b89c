/**
 * What the migration tests share: the local Redis and PostgreSQL (required under `CI=true`,
 * skipped loudly elsewhere), a fresh key prefix and a fresh migrated schema per test, and the
 * source/target objects built on them. Everything a test creates is removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { resolveConfig, type StorageConfigInput } from '../../lib/config/index.js';
import { createPgTarget, type PgTarget } from '../../lib/data-migration/pg-target.js';
import { createRedisSource } from '../../lib/data-migration/redis-source.js';
import type { RecordSource } from '../../lib/data-migration/source.js';
import { createStorage } from '../../lib/storage/index.js';
import { applySchemaMigrations } from '../../lib/storage/postgresql/schema-migrations.js';
import { createSql, quoteIdent, type Sql } from '../../lib/storage/postgresql/sql.js';
import type { Storage } from '../../lib/storage/types.js';
import { testDatabaseUrl } from '../support/backends.js';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
export const DATABASE_URL = testDatabaseUrl();

/** Why the servers cannot be used here (tests skip, loudly), or undefined. Under CI: throws. */
export async function migrateUnavailable(): Promise<string | undefined> {
  let reason: string | undefined;
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    reason = `no Redis at ${REDIS_URL} (${(error as Error).message}); install redis-server`;
  } finally {
    redis.disconnect();
  }
  if (reason === undefined) {
    try {
      const sql = await adminSql();
      try {
        await sql.query('SELECT 1');
      } finally {
        await sql.close();
      }
    } catch (error) {
      reason = `no PostgreSQL at ${DATABASE_URL} (${(error as Error).message}); install postgresql`;
    }
  }
  if (reason !== undefined) {
    if (process.env.CI) throw new Error(`migration tests need Redis and PostgreSQL under CI: ${reason}`);
    console.warn(`\n⚠ migration tests SKIPPED: ${reason}\n`);
  }
  return reason;
}

/** A Redis-backed storage writing under `prefix` (this project's layout: a copy's source). */
export function redisStorage(prefix: string, overrides: StorageConfigInput = {}): Storage {
  return createStorage({ ...overrides, backend: 'redis', keyPrefix: prefix, redis: { url: REDIS_URL } });
}

/** A PostgreSQL-backed storage on `schema` (a copy's target, read through the public API). */
export function pgStorage(schema: string, overrides: StorageConfigInput = {}): Storage {
  return createStorage({
    ...overrides,
    backend: 'postgresql',
    postgresql: { url: DATABASE_URL, schema, listen: false },
  });
}

export function adminSql(): Promise<Sql> {
  return createSql(
    resolveConfig({ postgresql: { url: DATABASE_URL, listen: false, connectTimeout: 3 } }).postgresql,
  );
}

/** Fresh names for one test, and what to remove after it. */
export class Scratch {
  readonly run = randomBytes(4).toString('hex');
  readonly prefixes: string[] = [];
  readonly schemas: string[] = [];
  readonly clients: Redis[] = [];
  readonly sqls: Sql[] = [];
  private n = 0;

  prefix(): string {
    const prefix = `kst:mig:${this.run}:${this.n++}:`;
    this.prefixes.push(prefix);
    return prefix;
  }

  redis(): Redis {
    const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    this.clients.push(client);
    return client;
  }

  /** A new schema with every migration applied (pass `migrated: false` for an empty one). */
  async schema(migrated = true): Promise<string> {
    const schema = `kst_mig_${this.run}_${this.n++}`;
    this.schemas.push(schema);
    const sql = await adminSql();
    try {
      if (migrated) await applySchemaMigrations(sql, { schema });
      else await sql.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
    } finally {
      await sql.close();
    }
    return schema;
  }

  async target(schema: string): Promise<PgTarget> {
    const sql = await adminSql();
    this.sqls.push(sql);
    return createPgTarget({ sql, schema, name: DATABASE_URL });
  }

  source(prefix: string): RecordSource {
    return createRedisSource({ client: this.redis(), prefix, name: `${REDIS_URL}, prefix ${prefix}` });
  }

  async cleanup(): Promise<void> {
    const redis = new Redis(REDIS_URL);
    try {
      for (const prefix of this.prefixes.splice(0)) {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(
            cursor,
            'MATCH',
            `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`,
            'COUNT',
            5000,
          );
          cursor = next;
          if (keys.length > 0) await redis.unlink(...keys);
        } while (cursor !== '0');
      }
    } finally {
      redis.disconnect();
    }
    for (const client of this.clients.splice(0)) client.disconnect();
    await Promise.allSettled(this.sqls.splice(0).map((s) => s.close()));
    if (this.schemas.length > 0) {
      const sql = await adminSql();
      try {
        for (const schema of this.schemas.splice(0))
          await sql.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
      } finally {
        await sql.close();
      }
    }
  }
}
