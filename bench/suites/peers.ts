/**
 * Peers doing the same work: Keyv (with @keyv/redis and @keyv/postgres) for kv get / set, BullMQ
 * (Redis), pg-boss and graphile-worker (PostgreSQL) for queue throughput, each beside the library
 * on the same server.
 */
import KeyvPostgres from '@keyv/postgres';
import KeyvRedis from '@keyv/redis';
import { Queue, Worker } from 'bullmq';
import { Logger, type Runner, run as runGraphileWorker } from 'graphile-worker';
import Keyv from 'keyv';
import pg from 'pg';
import PgBoss from 'pg-boss';
import type { Storage } from '../../lib/storage/index.js';
import { type Context, DATABASE_URL, PG_POOL, REDIS_URL } from '../lib/context.js';
import { combine, type Sample, sampleInterleaved } from '../lib/measure.js';
import { libraryQueue, type QueueSystem, queueThroughput } from '../lib/throughput.js';

const VALUE = { cluster: 'prod', pods: 42, ready: true, labels: { app: 'api', tier: 'backend' } };
const KEYS = 100;
const CONSUMERS = 8;
/** Jobs per pg-boss fetch (and per library receive in the like-for-like row). */
const BATCH = 50;

/** Keyv and the library's kv on the same server, their calls alternating (see sampleInterleaved). */
async function kvRows(ctx: Context, pairs: [string, Keyv | Storage][]): Promise<void> {
  const ops: Record<string, (i: number) => Promise<unknown>>[] = [];
  for (const [, store] of pairs) {
    const kv = store instanceof Keyv ? store : store.kv;
    for (let i = 0; i < KEYS; i++) await kv.set(`k${i}`, VALUE);
    ops.push({ 'kv.get': (i) => kv.get(`k${i % KEYS}`), 'kv.set': (i) => kv.set(`k${i % KEYS}`, VALUE) });
  }
  const { reps, ...budget } = ctx.budget;
  for (const op of ['kv.get', 'kv.set']) {
    for (const concurrency of [1, 8]) {
      const samples: Sample[][] = pairs.map(() => []);
      for (let rep = 0; rep < reps; rep++) {
        const got = await sampleInterleaved(
          ops.map((o) => o[op]!),
          budget,
          concurrency,
        );
        for (const [p, g] of got.entries()) samples[p]!.push(g);
      }
      pairs.forEach(([name], p) => {
        const m = combine(samples[p]!);
        ctx.results.peers.kv.push({ backend: name, op, concurrency, ...m });
        ctx.log(
          `  ${name.padEnd(24)} ${op} c${concurrency}  p50 ${m.p50.toFixed(3)} ms  ${Math.round(m.opsPerSec)} ops/s`,
        );
      });
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
      // fetched jobs fetches again at once; an empty fetch waits out the polling interval (0.5 s at
      // least). With one job per fetch that caps it near 16 jobs/s here, so each fetch takes up to
      // 50 jobs, completed together: pg-boss at its best, not at its default.
      for (let c = 0; c < consumers; c++) {
        await boss.work(queueName, { batchSize: BATCH, pollingIntervalSeconds: 0.5 }, async (batch) => {
          for (const _ of batch) done();
        });
      }
    },
    send: (n) => boss.send(queueName, { n, task: 'bench' }),
    async stop() {
      await boss.stop({ graceful: false, wait: true });
    },
  };
}

/**
 * graphile-worker 0.16 with its recommended settings: a runner of `concurrency` workers (each
 * fetches one job per call, woken by LISTEN/NOTIFY, polling at the default 2 s), its own pool,
 * jobs added through the runner. A completed job is deleted, as an acked message is.
 */
function graphileWorker(ctx: Context, queueName: string): QueueSystem {
  const schema = ctx.schema();
  let runner: Runner | undefined;
  return {
    async start(consumers, done) {
      runner = await runGraphileWorker({
        connectionString: DATABASE_URL,
        schema,
        concurrency: consumers,
        maxPoolSize: PG_POOL,
        noHandleSignals: true,
        logger: silentGraphileLogger,
        taskList: {
          [queueName]: async () => {
            done();
          },
        },
      });
    },
    send: (n) => runner!.addJob(queueName, { n, task: 'bench' }),
    async stop() {
      await runner?.stop();
    },
  };
}

const silentGraphileLogger = new Logger(() => () => {});

export async function peersSuite(ctx: Context): Promise<void> {
  // The same jobs for every system of a run. At 5,000 jobs/s, 2,000 jobs took 0.4 s: a pause of
  // the machine weighed on it as much as the systems did.
  const jobs = ctx.options.quick ? 1000 : 5000;
  const reps = ctx.budget.reps;
  if (ctx.redisUp) {
    const store = new KeyvRedis(REDIS_URL);
    const keyv = new Keyv({ store, namespace: `${ctx.prefix}keyv` });
    keyv.on('error', () => {});
    ctx.defer(() => keyv.disconnect());
    const storage = await ctx.storage('redis');
    await kvRows(ctx, [
      ['kubently (redis)', storage],
      ['@keyv/redis', keyv],
    ]);
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
    const storage = await ctx.storage('postgresql (pg)');
    const syncStorage = await ctx.storage('postgresql (pg)', {
      postgresql: {
        driver: 'pg',
        url: DATABASE_URL,
        schema: ctx.schema(),
        migrate: true,
        poolSize: PG_POOL,
        leaseCommit: 'sync',
      },
    });
    await kvRows(ctx, [
      ['kubently (postgresql)', storage],
      ['@keyv/postgres', keyv],
    ]);
    const ours = await queueThroughput(
      'kubently (postgresql)',
      (r) => libraryQueue(storage, `peer-${r}`),
      jobs,
      CONSUMERS,
      reps,
    );
    // Like for like with pg-boss's batched fetch: receive up to 50 per call, ack them together.
    const batched = await queueThroughput(
      `kubently (postgresql, batches of ${BATCH})`,
      (r) => libraryQueue(storage, `peer-batch-${r}`, BATCH),
      jobs,
      CONSUMERS,
      reps,
    );
    const theirs = await queueThroughput(
      `pg-boss (batches of ${BATCH})`,
      (r) => pgBoss(ctx, `peer-${r}`),
      jobs,
      CONSUMERS,
      reps,
    );
    const graphile = await queueThroughput(
      'graphile-worker',
      (r) => graphileWorker(ctx, `peer_${r}`),
      jobs,
      CONSUMERS,
      reps,
    );
    // pg-boss and graphile-worker wait for the disk at every commit; the library's claims and
    // acks do not by default (postgresql.leaseCommit). Like for like, they wait here too.
    const synced = await queueThroughput(
      'kubently (postgresql, leaseCommit: sync)',
      (r) => libraryQueue(syncStorage, `peer-sync-${r}`),
      jobs,
      CONSUMERS,
      reps,
    );
    ctx.results.peers.queue.push(ours, batched, synced, theirs, graphile);
    ctx.log(
      `  queue ${jobs} jobs, ${CONSUMERS} consumers: kubently (postgresql) ${Math.round(ours.jobsPerSec)} jobs/s (leaseCommit: sync ${Math.round(synced.jobsPerSec)}), graphile-worker ${Math.round(graphile.jobsPerSec)} jobs/s; batches of ${BATCH}: kubently ${Math.round(batched.jobsPerSec)} jobs/s, pg-boss ${Math.round(theirs.jobsPerSec)} jobs/s`,
    );
  } else ctx.skip('peers on PostgreSQL', `no PostgreSQL at ${DATABASE_URL}`);
}
