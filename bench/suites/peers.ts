/**
 * Peers doing the same work: Keyv (with @keyv/redis and @keyv/postgres) for kv get / set, BullMQ
 * (Redis) and pg-boss (PostgreSQL) for queue throughput, each beside the library on the same server.
 */
import KeyvPostgres from '@keyv/postgres';
import KeyvRedis from '@keyv/redis';
import { Queue, Worker } from 'bullmq';
import Keyv from 'keyv';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { type Context, DATABASE_URL, PG_POOL, REDIS_URL } from '../lib/context.js';
import { measure } from '../lib/measure.js';
import { libraryQueue, type QueueSystem, queueThroughput } from '../lib/throughput.js';

const VALUE = { cluster: 'prod', pods: 42, ready: true, labels: { app: 'api', tier: 'backend' } };
const KEYS = 100;
const CONSUMERS = 8;

async function keyvRows(ctx: Context, name: string, keyv: Keyv): Promise<void> {
  for (let i = 0; i < KEYS; i++) await keyv.set(`k${i}`, VALUE);
  const ops: [string, (i: number) => Promise<unknown>][] = [
    ['kv.get', (i) => keyv.get(`k${i % KEYS}`)],
    ['kv.set', (i) => keyv.set(`k${i % KEYS}`, VALUE)],
  ];
  for (const [op, fn] of ops) {
    for (const concurrency of [1, 8]) {
      const m = await measure(fn, ctx.budget, concurrency);
      ctx.results.peers.kv.push({ backend: name, op, concurrency, ...m });
      ctx.log(
        `  ${name.padEnd(16)} ${op} c${concurrency}  p50 ${m.p50.toFixed(3)} ms  ${Math.round(m.opsPerSec)} ops/s`,
      );
    }
  }
}

function bullmq(ctx: Context, queueName: string): QueueSystem {
  const url = new URL(REDIS_URL);
  const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
  const prefix = `${ctx.prefix}bull`;
  const queue = new Queue(queueName, { connection, prefix });
  let worker: Worker | undefined;
  return {
    async start(consumers, done) {
      worker = new Worker(queueName, async () => {}, { connection, prefix, concurrency: consumers });
      worker.on('completed', done);
      await worker.waitUntilReady();
      await queue.waitUntilReady();
    },
    // Completed jobs are removed, as an acked message is.
    send: (n) => queue.add('job', { n, task: 'bench' }, { removeOnComplete: true }),
    async stop() {
      await worker?.close();
      await queue.close();
    },
  };
}

function pgBoss(ctx: Context, queueName: string): QueueSystem {
  const boss = new PgBoss({ connectionString: DATABASE_URL, schema: ctx.schema(), max: PG_POOL });
  boss.on('error', () => {});
  return {
    async start(consumers, done) {
      await boss.start();
      await boss.createQueue(queueName);
      // pg-boss 10 runs one fetch loop per work() call: eight calls, eight consumers. A loop that
      // finds a job fetches again at once; only an empty fetch waits for the polling interval.
      for (let c = 0; c < consumers; c++) {
        await boss.work(queueName, { batchSize: 1, pollingIntervalSeconds: 0.5 }, async () => {
          done();
        });
      }
    },
    send: (n) => boss.send(queueName, { n, task: 'bench' }),
    async stop() {
      await boss.stop({ graceful: false, wait: true });
    },
  };
}

export async function peersSuite(ctx: Context): Promise<void> {
  const jobs = ctx.options.quick ? 200 : 2000;
  const reps = ctx.budget.reps;
  if (ctx.redisUp) {
    const store = new KeyvRedis(REDIS_URL);
    const keyv = new Keyv({ store, namespace: `${ctx.prefix}keyv` });
    keyv.on('error', () => {});
    ctx.defer(() => keyv.disconnect());
    await keyvRows(ctx, '@keyv/redis', keyv);
    const storage = await ctx.storage('redis');
    const ours = await queueThroughput(
      'kubently (redis)',
      (r) => libraryQueue(storage, `peer-${r}`),
      jobs,
      CONSUMERS,
      reps,
    );
    const theirs = await queueThroughput('BullMQ', (r) => bullmq(ctx, `peer-${r}`), jobs, CONSUMERS, reps);
    ctx.results.peers.queue.push(ours, theirs);
    ctx.log(
      `  queue ${jobs} jobs, ${CONSUMERS} consumers: kubently (redis) ${Math.round(ours.jobsPerSec)} jobs/s, BullMQ ${Math.round(theirs.jobsPerSec)} jobs/s`,
    );
  } else ctx.skip('peers on Redis', `no Redis at ${REDIS_URL}`);

  if (ctx.pgUp) {
    const schema = ctx.schema();
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await admin.end();
    const store = new KeyvPostgres({ uri: DATABASE_URL, schema, table: 'keyv', max: PG_POOL });
    const keyv = new Keyv({ store, namespace: 'bench' });
    keyv.on('error', () => {});
    ctx.defer(() => keyv.disconnect());
    await keyvRows(ctx, '@keyv/postgres', keyv);
    const storage = await ctx.storage('postgresql (pg)');
    const ours = await queueThroughput(
      'kubently (postgresql)',
      (r) => libraryQueue(storage, `peer-${r}`),
      jobs,
      CONSUMERS,
      reps,
    );
    const theirs = await queueThroughput('pg-boss', (r) => pgBoss(ctx, `peer-${r}`), jobs, CONSUMERS, reps);
    ctx.results.peers.queue.push(ours, theirs);
    ctx.log(
      `  queue ${jobs} jobs, ${CONSUMERS} consumers: kubently (postgresql) ${Math.round(ours.jobsPerSec)} jobs/s, pg-boss ${Math.round(theirs.jobsPerSec)} jobs/s`,
    );
  } else ctx.skip('peers on PostgreSQL', `no PostgreSQL at ${DATABASE_URL}`);
}
