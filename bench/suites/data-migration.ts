/**
 * Data migration: Redis (this project's layout) → PostgreSQL. A fresh key prefix is filled
 * through the library with every store (~100,000 items; quick: ~20,000; not timed), then each
 * repetition copies it into fresh migrated schemas with `copy` (verification on, the default,
 * and `verify: false`), runs a raw baseline for the kv part, and times `validate` on the
 * verified copy. The raw baseline is what a hand-written kv copy would do with the drivers
 * alone: SCAN, a pipeline of GET + PTTL per batch of 1,000 keys, one `INSERT … SELECT FROM
 * unnest … ON CONFLICT` per batch into a `kv_store` of a migrated schema, the next batch read
 * while one is written (as `copy` does), and no checkpoint.
 *
 * The order of the three copies rotates from one repetition to the next, so a slower moment of
 * the shared machine does not always fall on the same one; the kv ratio is the median of the
 * per-repetition ratios. The key prefix and every schema are removed at the end, also on failure.
 */
import type { Redis } from 'ioredis';
import pg from 'pg';
import { resolveConfig } from '../../lib/config/index.js';
import { type CopyReport, copy } from '../../lib/data-migration/copy.js';
import { createPgTarget, type PgTarget } from '../../lib/data-migration/pg-target.js';
import { STORES, type StoreName } from '../../lib/data-migration/records.js';
import { createRedisSource, globEscape } from '../../lib/data-migration/redis-source.js';
import type { RecordSource } from '../../lib/data-migration/source.js';
import { validate } from '../../lib/data-migration/validate.js';
import { createStorage } from '../../lib/storage/index.js';
import { applySchemaMigrations } from '../../lib/storage/postgresql/schema-migrations.js';
import { createSql, quoteIdent, type Sql } from '../../lib/storage/postgresql/sql.js';
import { type PopulateCounts, populate } from '../../test/data-migration/populate.js';
import { type Context, DATABASE_URL, REDIS_URL } from '../lib/context.js';
import { median } from '../lib/measure.js';
import type { MigrateResult, MigrateRow } from '../lib/results.js';

/** ~100,000 items with the dedup ids the queue sends make (every tenth). */
const FULL: PopulateCounts & { connections: number } = {
  kv: 68_000,
  sessions: 10_000,
  tokens: 2_000,
  connections: 1_000,
  queues: 10_000,
  events: 5_000,
  audit: 3_000,
};
const BATCH = 1000;

export const COPY = 'copy';
export const COPY_NO_VERIFY = 'copy (verify: false)';
export const RAW_KV = 'raw kv (ioredis → pg)';
export const VALIDATE = 'validate';

type Counts = typeof FULL;

function scaled(factor: number): Counts {
  const out = { ...FULL };
  for (const store of Object.keys(out) as (keyof Counts)[]) out[store] = Math.round(out[store] * factor);
  return out;
}

/** Fills `keyPrefix` through the library: `populate`'s mix, plus WebSocket connections on 1–3 channels each. */
async function fill(keyPrefix: string, counts: Counts): Promise<void> {
  const storage = createStorage({
    backend: 'redis',
    keyPrefix,
    redis: { url: REDIS_URL },
    // Nacked messages become dead letters, so the queue store holds every state.
    queues: { maxAttempts: 1 },
    events: { maxHistory: 10_000 },
  });
  try {
    await populate(storage, counts);
    for (let i = 0; i < counts.connections; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, counts.connections - i) }, async (_, j) => {
          const n = i + j;
          const connectionId = `conn-${n}`;
          await storage.connections.register({
            connectionId,
            identity: `svc-${n % 20}`,
            tokenId: `token-${n}`,
            scopes: ['kv:read'],
            resources: ['*'],
          });
          for (let c = 0; c <= n % 3; c++) await storage.connections.subscribe(connectionId, `channel-${c}`);
        }),
      );
    }
  } finally {
    await storage.close();
  }
}

/** Reads the kv keys with SCAN and pipelined GET + PTTL, and upserts them in batches of 1,000; answers keys written. */
async function rawKv(redis: Redis, client: pg.Client, kvBase: string, table: string): Promise<number> {
  const pattern = `${globEscape(kvBase)}*`;
  let cursor = '0';
  let scanned = false;
  const pending: string[] = [];
  const read = async (): Promise<[string[], string[], (string | null)[]] | undefined> => {
    while (pending.length < BATCH && !scanned) {
      const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', BATCH);
      cursor = next;
      pending.push(...found);
      scanned = next === '0';
    }
    if (pending.length === 0) return undefined;
    // SCAN may answer a key twice; one INSERT … ON CONFLICT cannot update a row twice.
    const keys = [...new Set(pending.splice(0, BATCH))];
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.get(key).pttl(key);
    const replies = (await pipeline.exec()) ?? [];
    const now = Date.now();
    const out: [string[], string[], (string | null)[]] = [[], [], []];
    keys.forEach((key, i) => {
      const value = replies[i * 2]?.[1] as string | null;
      const pttl = replies[i * 2 + 1]?.[1] as number;
      if (value === null || pttl === -2) return;
      out[0].push(key.slice(kvBase.length));
      out[1].push(value);
      out[2].push(pttl < 0 ? null : new Date(now + pttl).toISOString());
    });
    return out;
  };
  let written = 0;
  let next = read();
  for (;;) {
    const batch = await next;
    if (!batch) break;
    next = read();
    next.catch(() => {}); // surfaces at the next await
    await client.query(
      `INSERT INTO ${table} (key, value, expires_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
      batch,
    );
    written += batch[0].length;
  }
  return written;
}

const readOf = (report: CopyReport) => Object.values(report.stores).reduce((n, r) => n + r.read, 0);

export async function migrateSuite(ctx: Context): Promise<void> {
  if (!ctx.redisUp || !ctx.pgUp) {
    ctx.skip('migrate', ctx.redisUp ? `no PostgreSQL at ${DATABASE_URL}` : `no Redis at ${REDIS_URL}`);
    return;
  }
  const counts = ctx.options.quick ? scaled(0.2) : FULL;
  const reps = ctx.budget.reps;
  const keyPrefix = `${ctx.prefix}migrate:`;
  const schemas: string[] = [];
  let sql: Sql | undefined;
  const redis = ctx.redis();
  const raw = new pg.Client({ connectionString: DATABASE_URL });
  raw.on('error', () => {});

  const dropSchemas = async () => {
    if (!sql) return;
    for (const schema of schemas.splice(0))
      await sql.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  };
  const unlinkPrefix = async () => {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${globEscape(keyPrefix)}*`, 'COUNT', 5000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  };

  try {
    const t = performance.now();
    await fill(keyPrefix, counts);
    const populateSeconds = (performance.now() - t) / 1000;

    sql = await createSql(resolveConfig({ postgresql: { url: DATABASE_URL, listen: false } }).postgresql);
    await raw.connect();
    const source: RecordSource = createRedisSource({
      client: redis,
      prefix: keyPrefix,
      name: `${REDIS_URL}, prefix ${keyPrefix}`,
    });
    const freshTarget = async (): Promise<PgTarget> => {
      // The run's schema names: the context drops them too if this process is interrupted.
      const schema = ctx.schema();
      schemas.push(schema);
      await applySchemaMigrations(sql!, { schema });
      return createPgTarget({ sql: sql!, schema, name: DATABASE_URL });
    };
    ctx.log(
      `  populated ${Object.entries(counts)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ')} in ${populateSeconds.toFixed(1)} s`,
    );

    const runs = new Map<string, { items: number[]; perSec: number[]; stores: Map<string, number[]> }>();
    const record = (run: string, items: number, seconds: number, stores: [string, number][]) => {
      const r = runs.get(run) ?? { items: [], perSec: [], stores: new Map<string, number[]>() };
      runs.set(run, r);
      r.items.push(items);
      r.perSec.push(items / seconds);
      for (const [store, rate] of stores) r.stores.set(store, [...(r.stores.get(store) ?? []), rate]);
      ctx.log(
        `  ${run.padEnd(22)} ${String(items).padStart(7)} items in ${seconds.toFixed(2)} s: ${Math.round(items / seconds)} items/s (${stores.map(([s, rate]) => `${s} ${Math.round(rate)}`).join(', ')})`,
      );
    };
    const kvRatio = { verify: [] as number[], noVerify: [] as number[] };
    let source0: Record<string, number> = {};
    let validated = true;

    for (let rep = 0; rep < reps; rep++) {
      const kvRate: Record<string, number> = {};
      const copyRun = (name: string, verify: boolean) => async () => {
        const target = await freshTarget();
        const started = performance.now();
        const report = await copy({ source, target, batchSize: BATCH, verify });
        const seconds = (performance.now() - started) / 1000;
        if (report.interrupted) throw new Error(`${name}: interrupted`);
        const stores = STORES.flatMap((s): [string, number][] => {
          const r = report.stores[s];
          return r && r.durationMs > 0 ? [[s, (r.read * 1000) / r.durationMs]] : [];
        });
        kvRate[name] = stores.find(([s]) => s === 'kv')?.[1] ?? Number.NaN;
        record(name, readOf(report), seconds, stores);
        source0 = Object.fromEntries(STORES.map((s) => [s, report.stores[s]?.read ?? 0]));
        return target;
      };
      const rawRun = async () => {
        const target = await freshTarget();
        const table = `${quoteIdent(target.schema)}.kv_store`;
        const started = performance.now();
        const written = await rawKv(redis, raw, `${keyPrefix}kv:`, table);
        const seconds = (performance.now() - started) / 1000;
        kvRate[RAW_KV] = written / seconds;
        record(RAW_KV, written, seconds, [['kv', written / seconds]]);
      };
      let verified: PgTarget | undefined;
      const order = [
        async () => {
          verified = await copyRun(COPY, true)();
        },
        async () => void (await copyRun(COPY_NO_VERIFY, false)()),
        rawRun,
      ];
      for (let i = 0; i < order.length; i++) await order[(i + rep) % order.length]!();
      kvRatio.verify.push(kvRate[COPY]! / kvRate[RAW_KV]!);
      kvRatio.noVerify.push(kvRate[COPY_NO_VERIFY]! / kvRate[RAW_KV]!);

      // validate, store by store (as it runs them anyway) so each store gets its own rate.
      let items = 0;
      let seconds = 0;
      const stores: [string, number][] = [];
      for (const store of source.stores as readonly StoreName[]) {
        const started = performance.now();
        const v = await validate({ source, target: verified!, stores: [store], batchSize: BATCH });
        const took = (performance.now() - started) / 1000;
        const checked = v.stores[store]?.sourceCount ?? 0;
        items += checked;
        seconds += took;
        stores.push([store, checked / took]);
        if (!v.ok) {
          validated = false;
          const s = v.stores[store];
          ctx.log(
            `  validate ${store}: missing ${s?.missing}, extra ${s?.extra}, changed ${s?.changed}, ttl drift ${s?.ttlDrift}`,
          );
        }
      }
      record(VALIDATE, items, seconds, stores);
      // Each repetition starts from an empty database, not one with the previous copies in it.
      await dropSchemas();
    }

    const rows: MigrateRow[] = [...runs].map(([run, r]) => ({
      run,
      items: median(r.items),
      itemsPerSec: median(r.perSec),
      reps: r.perSec,
      stores: Object.fromEntries([...r.stores].map(([s, rates]) => [s, median(rates)])),
    }));
    const result: MigrateResult = {
      source: source0,
      populateSeconds,
      rows,
      kvVsRaw: { verify: median(kvRatio.verify), noVerify: median(kvRatio.noVerify) },
      validated,
    };
    ctx.results.migrate = result;
    if (!validated)
      ctx.results.meta.notes.push('migrate: validate found differences after the copy (see the log)');
    ctx.log(
      `  kv: copy / raw ${result.kvVsRaw.verify.toFixed(2)}× (verify: false ${result.kvVsRaw.noVerify.toFixed(2)}×)`,
    );
  } finally {
    await dropSchemas().catch((error: unknown) => ctx.log(`  cleanup: ${(error as Error).message}`));
    await unlinkPrefix().catch((error: unknown) => ctx.log(`  cleanup: ${(error as Error).message}`));
    await raw.end().catch(() => {});
    await sql?.close().catch(() => {});
  }
}
