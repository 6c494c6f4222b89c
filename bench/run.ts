/**
 * `npm run bench [-- --quick]`: latency of the library's hot operations against the raw
 * driver doing the same round trips, in one process, reported as p50/p99 and ratios.
 * Numbers from a shared 2-core machine vary between runs; compare ratios, not absolutes.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { createStorage, type Json } from '../lib/storage/index.js';

const quick = process.argv.includes('--quick');
const ITERATIONS = quick ? 500 : 5000;
const WARMUP = quick ? 100 : 500;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

interface Row {
  backend: string;
  op: string;
  p50: number;
  p99: number;
  opsPerSec: number;
}

async function measure(backend: string, op: string, fn: (i: number) => Promise<unknown>): Promise<Row> {
  for (let i = 0; i < WARMUP; i++) await fn(i);
  const samples = new Float64Array(ITERATIONS);
  const started = performance.now();
  for (let i = 0; i < ITERATIONS; i++) {
    const t = performance.now();
    await fn(i);
    samples[i] = performance.now() - t;
  }
  const elapsed = performance.now() - started;
  samples.sort();
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number;
  return { backend, op, p50: at(0.5), p99: at(0.99), opsPerSec: (ITERATIONS / elapsed) * 1000 };
}

async function redisReachable(): Promise<boolean> {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0 });
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const prefix = `kst:bench:${process.pid}:`;
  const value = { cluster: 'prod', pods: 42, ready: true };
  const text = JSON.stringify(value);

  const memory = createStorage({ backend: 'memory' });
  rows.push(await measure('memory', 'kv.set', (i) => memory.kv.set(`k${i % 100}`, value)));
  rows.push(await measure('memory', 'kv.get', (i) => memory.kv.get(`k${i % 100}`)));
  await memory.close();

  if (await redisReachable()) {
    const raw = new Redis(REDIS_URL);
    const storage = createStorage({ backend: 'redis', keyPrefix: prefix, redis: { url: REDIS_URL } });
    await storage.sessions.create({ clusterId: 'bench' });
    rows.push(await measure('ioredis (raw)', 'SET', (i) => raw.set(`${prefix}raw:${i % 100}`, text)));
    rows.push(await measure('redis', 'kv.set', (i) => storage.kv.set(`k${i % 100}`, value)));
    rows.push(
      await measure('ioredis (raw)', 'GET', async (i) =>
        JSON.parse((await raw.get(`${prefix}raw:${i % 100}`)) ?? 'null'),
      ),
    );
    rows.push(await measure('redis', 'kv.get', (i) => storage.kv.get(`k${i % 100}`)));
    rows.push(await measure('ioredis (raw)', 'ZSCORE', () => raw.zscore(`${prefix}{s}:clusters`, 'bench')));
    rows.push(
      await measure('redis', 'sessions.isClusterActive', () => storage.sessions.isClusterActive('bench')),
    );
    rows.push(
      await measure('redis', 'queue pop (send+receive+ack)', async () => {
        await storage.queues.send('bench', value);
        const [m] = await storage.queues.receive('bench');
        if (m) await storage.queues.ack('bench', m.id, m.receipt);
      }),
    );
    await storage.close();
    let cursor = '0';
    do {
      const [next, keys] = await raw.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await raw.del(...keys);
    } while (cursor !== '0');
    raw.disconnect();
  } else {
    console.warn(`redis rows skipped: no Redis at ${REDIS_URL}`);
  }

  rows.push(...(await postgresRows(value, text)));

  const ratio = (op: string, rawOp: string, backend = 'redis', rawBackend = 'ioredis (raw)') => {
    const lib = rows.find((r) => r.backend === backend && r.op === op);
    const base = rows.find((r) => r.backend === rawBackend && r.op === rawOp);
    return lib && base ? (lib.p50 / base.p50).toFixed(2) : 'n/a';
  };
  console.log(
    `\n${quick ? 'quick' : 'full'} run, ${ITERATIONS} iterations per row, node ${process.version}\n`,
  );
  console.log('| backend | operation | p50 ms | p99 ms | ops/s |');
  console.log('|---|---|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.backend} | ${r.op} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${Math.round(r.opsPerSec)} |`,
    );
  }
  console.log(
    `\nlibrary / raw driver (p50): kv.get ${ratio('kv.get', 'GET')}×, kv.set ${ratio('kv.set', 'SET')}×, isClusterActive ${ratio('sessions.isClusterActive', 'ZSCORE')}×`,
  );
  const pgRatio = (op: string, rawOp: string) => ratio(op, rawOp, 'postgresql (pg)', 'pg (raw)');
  console.log(
    `library / raw pg (p50): kv.get ${pgRatio('kv.get', 'SELECT by key')}×, kv.set ${pgRatio('kv.set', 'upsert')}×, isClusterActive ${pgRatio('sessions.isClusterActive', 'EXISTS')}×`,
  );
}

/**
 * The postgresql backend on the `pg` driver against node-postgres issuing the statements a
 * careful hand-written version would (prepared, same tables and indexes), in a schema of its own.
 */
async function postgresRows(value: Json, text: string): Promise<Row[]> {
  const raw = new pg.Pool({ connectionString: DATABASE_URL, max: 5 });
  raw.on('error', () => {});
  try {
    await raw.query('SELECT 1');
  } catch (error) {
    console.warn(`postgresql rows skipped: no PostgreSQL at ${DATABASE_URL} (${(error as Error).message})`);
    await raw.end();
    return [];
  }
  const schema = `kst_bench_${process.pid}`;
  const rows: Row[] = [];
  // The storage creates its schema on first use; the raw rows use the same tables.
  const storage = createStorage({
    backend: 'postgresql',
    postgresql: { url: DATABASE_URL, schema, migrate: true },
  });
  try {
    await storage.sessions.create({ clusterId: 'bench' });
    const kv = `"${schema}".kv_store`;
    const upsert = {
      name: 'bench_upsert',
      text: `INSERT INTO ${kv} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = NULL`,
    };
    const select = {
      name: 'bench_select',
      text: `SELECT value FROM ${kv} WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())`,
    };
    const exists = {
      name: 'bench_exists',
      text: `SELECT EXISTS (SELECT 1 FROM "${schema}".sessions WHERE cluster_id = $1 AND expires_at > now()) AS active`,
    };
    rows.push(
      await measure('pg (raw)', 'upsert', (i) => raw.query({ ...upsert, values: [`raw${i % 100}`, text] })),
    );
    rows.push(await measure('postgresql (pg)', 'kv.set', (i) => storage.kv.set(`k${i % 100}`, value)));
    rows.push(
      await measure('pg (raw)', 'SELECT by key', async (i) => {
        const { rows: found } = await raw.query({ ...select, values: [`raw${i % 100}`] });
        return found[0] && JSON.parse(found[0].value);
      }),
    );
    rows.push(await measure('postgresql (pg)', 'kv.get', (i) => storage.kv.get(`k${i % 100}`)));
    rows.push(await measure('pg (raw)', 'EXISTS', () => raw.query({ ...exists, values: ['bench'] })));
    rows.push(
      await measure('postgresql (pg)', 'sessions.isClusterActive', () =>
        storage.sessions.isClusterActive('bench'),
      ),
    );
    rows.push(
      await measure('postgresql (pg)', 'queue pop (send+receive+ack)', async () => {
        await storage.queues.send('bench', value);
        const [m] = await storage.queues.receive('bench');
        if (m) await storage.queues.ack('bench', m.id, m.receipt);
      }),
    );
  } finally {
    await storage.close();
    await raw.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await raw.end();
  }
  return rows;
}

await main();
