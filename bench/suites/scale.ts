/**
 * How cost grows: kv latency with 1k, 100k and 1M keys stored (Redis and PostgreSQL), queue
 * throughput with 1, 4 and 8 consumers, and the PostgreSQL sweep removing 1M expired rows
 * (rows/s) with the read p99 during the sweep beside the idle one. Keys and rows are loaded
 * around the library in bulk (Redis pipelines of MSET, `INSERT … SELECT generate_series`);
 * loading time is reported apart from what is measured.
 */
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { Storage } from '../../lib/storage/index.js';
import type { Context } from '../lib/context.js';
import { measure, quantile } from '../lib/measure.js';
import { libraryQueue, queueThroughput } from '../lib/throughput.js';

const VALUE_TEXT = JSON.stringify({ cluster: 'prod', pods: 42, ready: true });
const CHUNK = 1000;

/** Stores keys `key<from>` … `key<to - 1>` under `kvPrefix`, 1,000 per MSET, 50 MSETs per pipeline. */
async function loadRedis(client: Redis, kvPrefix: string, from: number, to: number): Promise<void> {
  for (let start = from; start < to; start += CHUNK * 50) {
    const pipeline = client.pipeline();
    for (let chunk = start; chunk < Math.min(to, start + CHUNK * 50); chunk += CHUNK) {
      const args: string[] = [];
      for (let i = chunk; i < Math.min(to, chunk + CHUNK); i++) args.push(`${kvPrefix}key${i}`, VALUE_TEXT);
      pipeline.mset(...args);
    }
    await pipeline.exec();
  }
}

async function unloadRedis(client: Redis, kvPrefix: string, count: number): Promise<void> {
  for (let start = 0; start < count; start += CHUNK * 50) {
    const pipeline = client.pipeline();
    for (let chunk = start; chunk < Math.min(count, start + CHUNK * 50); chunk += CHUNK) {
      const keys: string[] = [];
      for (let i = chunk; i < Math.min(count, chunk + CHUNK); i++) keys.push(`${kvPrefix}key${i}`);
      pipeline.unlink(...keys);
    }
    await pipeline.exec();
  }
}

async function keysScale(
  ctx: Context,
  backend: string,
  storage: Storage,
  sizes: number[],
  load: (from: number, to: number) => Promise<unknown>,
): Promise<void> {
  let stored = 0;
  for (const size of sizes) {
    const t = performance.now();
    await load(stored, size);
    stored = size;
    const setupSeconds = (performance.now() - t) / 1000;
    // Random keys across the whole set: a cache holding a hot few would hide the growth.
    const key = () => `key${Math.floor(Math.random() * size)}`;
    for (const [op, fn] of [
      ['kv.get', () => storage.kv.get(key())],
      ['kv.set', () => storage.kv.set(key(), { cluster: 'prod', pods: 43, ready: true })],
    ] as const) {
      const m = await measure(fn, ctx.budget, 1);
      ctx.results.scale.keys.push({ backend, keys: size, op, p50: m.p50, p99: m.p99, setupSeconds });
      ctx.log(
        `  ${backend.padEnd(16)} ${String(size).padStart(8)} keys ${op}  p50 ${m.p50.toFixed(3)} ms  p99 ${m.p99.toFixed(3)} ms  (load ${setupSeconds.toFixed(1)} s)`,
      );
    }
  }
}

async function sweepScale(ctx: Context, rows: number): Promise<void> {
  const { storage, schema } = await ctx.storageWithNames('postgresql (pg)');
  const pool: pg.Pool = ctx.pgPool(2);
  const live = 1000;
  for (let i = 0; i < live; i++) await storage.kv.set(`live${i}`, { n: i });
  const read = (i: number) => storage.kv.get(`live${i % live}`);
  const idle = await measure(read, { ...ctx.budget, reps: 1 }, 1);

  const t = performance.now();
  for (let start = 0; start < rows; start += 250_000) {
    await pool.query(
      `INSERT INTO "${schema}".kv_store (key, value, expires_at)
       SELECT 'expired' || g, $3, now() - interval '1 minute' FROM generate_series($1::int, $2::int) g`,
      [start, Math.min(rows, start + 250_000) - 1, VALUE_TEXT],
    );
  }
  await pool.query(`ANALYZE "${schema}".kv_store`);
  const setupSeconds = (performance.now() - t) / 1000;

  // One sweep removes at most 100 batches per table (the scheduled cleanup runs again later):
  // sweeps follow each other until one finds nothing, as repeated schedules would.
  const latencies: number[] = [];
  let sweeping = true;
  let swept = 0;
  let sweeps = 0;
  const began = performance.now();
  const sweep = (async () => {
    try {
      for (;;) {
        const { kv } = await storage.sweep();
        sweeps++;
        swept += kv;
        if (kv === 0) return;
      }
    } finally {
      sweeping = false;
    }
  })();
  const reader = (async () => {
    for (let i = 0; sweeping; i++) {
      const s = performance.now();
      await read(i);
      latencies.push(performance.now() - s);
    }
  })();
  await sweep;
  const seconds = (performance.now() - began) / 1000;
  await reader;
  latencies.sort((a, b) => a - b);
  ctx.results.scale.sweep.push({
    backend: 'postgresql (pg)',
    rows: swept,
    sweeps,
    seconds,
    rowsPerSec: swept / seconds,
    setupSeconds,
    idle: { p50: idle.p50, p99: idle.p99 },
    during: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) },
  });
  ctx.log(
    `  sweep ${swept} expired rows in ${sweeps} sweeps, ${seconds.toFixed(2)} s (${Math.round(swept / seconds)} rows/s; load ${setupSeconds.toFixed(1)} s); get p99 idle ${idle.p99.toFixed(3)} ms, during ${quantile(latencies, 0.99).toFixed(3)} ms over ${latencies.length} reads`,
  );
}

export async function scaleSuite(ctx: Context): Promise<void> {
  const quick = ctx.options.quick;
  const sizes = quick ? [1000, 10_000] : [1000, 100_000, 1_000_000];
  const jobs = quick ? 200 : 2000;
  if (ctx.redisUp) {
    const { storage, keyPrefix } = await ctx.storageWithNames('redis');
    const client = ctx.redis();
    const kvPrefix = `${keyPrefix}kv:`;
    try {
      await keysScale(ctx, 'redis', storage, sizes, (from, to) => loadRedis(client, kvPrefix, from, to));
    } finally {
      await unloadRedis(client, kvPrefix, sizes[sizes.length - 1] as number);
    }
  } else ctx.skip('scale on Redis', 'no Redis');
  if (ctx.pgUp) {
    const { storage, schema } = await ctx.storageWithNames('postgresql (pg)');
    const pool: pg.Pool = ctx.pgPool(2);
    await keysScale(ctx, 'postgresql (pg)', storage, sizes, async (from, to) => {
      await pool.query(
        `INSERT INTO "${schema}".kv_store (key, value) SELECT 'key' || g, $3 FROM generate_series($1::int, $2::int) g`,
        [from, to - 1, VALUE_TEXT],
      );
      await pool.query(`ANALYZE "${schema}".kv_store`);
    });
    await pool.query(`TRUNCATE "${schema}".kv_store`);
  } else ctx.skip('scale on PostgreSQL', 'no PostgreSQL');

  for (const backend of ['redis', 'postgresql (pg)'] as const) {
    if (ctx.unavailable(backend)) continue;
    const storage = await ctx.storage(backend);
    for (const consumers of [1, 4, 8]) {
      const row = await queueThroughput(
        `kubently (${backend === 'redis' ? 'redis' : 'postgresql'})`,
        (r) => libraryQueue(storage, `scale-${consumers}-${r}`),
        jobs,
        consumers,
        ctx.budget.reps,
      );
      ctx.results.scale.queue.push(row);
      ctx.log(`  ${row.system} ${consumers} consumer(s): ${Math.round(row.jobsPerSec)} jobs/s`);
    }
  }

  if (ctx.pgUp) await sweepScale(ctx, quick ? 20_000 : 1_000_000);
}
