/**
 * The seed's matrix: six hot operations on every backend, sequentially and at concurrency 8,
 * and the same round trips through the raw drivers (ioredis; `pg` and the Neon Pool running
 * hand-written statements over tables like the library's) for the overhead ratios.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { resolveConfig } from '../../lib/config/index.js';
import type { Storage } from '../../lib/storage/index.js';
import { createSql, type Sql } from '../../lib/storage/postgresql/sql.js';
import { ASYNC_COMMIT, queuePlans } from '../../lib/storage/postgresql/stores/queues.sql.js';
import { BACKENDS, type BackendName, type Context, DATABASE_URL, PG_POOL } from '../lib/context.js';
import { combine, type Sample, sampleInterleaved } from '../lib/measure.js';

export const OPS = ['kv.get', 'kv.set', 'session create', 'queue pop', 'pub/sub', 'cluster active'] as const;
export type Op = (typeof OPS)[number];
export const CONCURRENCY = [1, 8];

/** Each op of the matrix as a function of a call number. */
type OpTable = Record<Op, (i: number) => Promise<unknown>>;

/**
 * Statements and commits one side of a PostgreSQL group sends, per call of each op and
 * concurrency, counted at the client: a statement outside a transaction is one commit, a
 * transaction one commit; a statement carrying ASYNC_COMMIT commits without waiting for the
 * disk (counted apart). Everything sent while an op is measured counts, a subscriber's reads
 * included.
 */
class StatementCounter {
  /** The op and concurrency being measured (`op\0concurrency`). */
  measuring: string | undefined;
  private readonly counts = new Map<
    string,
    { calls: number; statements: number; commits: number; asyncCommits: number }
  >();
  private at(key: string) {
    let count = this.counts.get(key);
    if (!count) {
      count = { calls: 0, statements: 0, commits: 0, asyncCommits: 0 };
      this.counts.set(key, count);
    }
    return count;
  }
  sent(statements: number, commits: number, asyncCommits = 0): void {
    if (this.measuring === undefined) return;
    const count = this.at(this.measuring);
    count.statements += statements;
    count.commits += commits;
    count.asyncCommits += asyncCommits;
  }
  /** One statement outside a transaction: one commit, asynchronous when the statement says so. */
  statement(text: string): void {
    this.sent(1, 1, text.includes(ASYNC_COMMIT) ? 1 : 0);
  }
  /** `ops` with each call counted. */
  calls(ops: OpTable): OpTable {
    const counted = {} as OpTable;
    for (const op of OPS) {
      counted[op] = (i) => {
        if (this.measuring !== undefined) this.at(this.measuring).calls++;
        return ops[op](i);
      };
    }
    return counted;
  }
  /** An Sql whose statements are counted here. */
  sql(inner: Sql): Sql {
    return {
      ...inner,
      driver: inner.driver,
      query: (text, params) => {
        this.statement(text);
        return inner.query(text, params);
      },
      transaction: (fn) => {
        this.sent(0, 1);
        return inner.transaction((tx) =>
          fn({
            ...tx,
            query: (text, params) => {
              this.sent(1, 0);
              return tx.query(text, params);
            },
          }),
        );
      },
      close: () => inner.close(),
    };
  }
  perCall(
    op: Op,
    concurrency: number,
  ): { statementsPerCall: number; commitsPerCall: number; asyncCommitsPerCall: number } | undefined {
    const count = this.counts.get(`${op}\0${concurrency}`);
    if (!count || count.calls === 0) return undefined;
    return {
      statementsPerCall: count.statements / count.calls,
      commitsPerCall: count.commits / count.calls,
      asyncCommitsPerCall: count.asyncCommits / count.calls,
    };
  }
}

/** A group member: its name, its ops and, on PostgreSQL, what counts its statements. */
type Member = [string, OpTable, StatementCounter?];

const VALUE = { cluster: 'prod', pods: 42, ready: true, labels: { app: 'api', tier: 'backend' } };
const TEXT = JSON.stringify(VALUE);
const KEYS = 100;

/**
 * Resolves when the subscriber has seen the message numbered `n`: publish → delivery latency,
 * whatever the transport.
 */
class Deliveries {
  private readonly waiting = new Map<number, () => void>();
  wait(n: number): Promise<void> {
    return new Promise((resolve) => this.waiting.set(n, resolve));
  }
  deliver(n: number): void {
    const resolve = this.waiting.get(n);
    this.waiting.delete(n);
    resolve?.();
  }
}

async function libraryOps(storage: Storage): Promise<OpTable> {
  for (let i = 0; i < KEYS; i++) await storage.kv.set(`k${i}`, VALUE);
  await storage.sessions.create({ clusterId: 'bench-active', ttl: 3600 });
  const deliveries = new Deliveries();
  const channel = `bench-${randomUUID()}`;
  await storage.events.subscribe(channel, (event) => {
    deliveries.deliver((event.message as { n: number }).n);
  });
  return {
    'kv.get': (i) => storage.kv.get(`k${i % KEYS}`),
    'kv.set': (i) => storage.kv.set(`k${i % KEYS}`, VALUE),
    'session create': (i) => storage.sessions.create({ clusterId: `c${i % 10}`, userId: 'bench', ttl: 600 }),
    'queue pop': async () => {
      await storage.queues.send('bench', VALUE);
      // Concurrent callers share the queue: a receive can find every visible message leased by another caller's claim for a moment.
      for (;;) {
        const [m] = await storage.queues.receive('bench');
        if (m) return storage.queues.ack('bench', m.id, m.receipt);
      }
    },
    'pub/sub': async (i) => {
      const delivered = deliveries.wait(i);
      await storage.events.publish(channel, { n: i, ...VALUE });
      await delivered;
    },
    'cluster active': () => storage.sessions.isClusterActive('bench-active'),
  };
}

/**
 * The raw queue and publish as a careful ioredis user would write them to do the library's
 * durable work in as many round trips: a short script per step (EVALSHA), since a sequence
 * number, a lease and a receipt check cannot be had atomically from single commands.
 * Queue: a message hash (payload, sequence, enqueued time, attempts, receipt), a ready set in
 * FIFO order, leases in a deadline set whose ended leases go back to ready; ack checks the
 * receipt. Publish: a sequence number, the event kept in a capped stream, then PUBLISH.
 */
export const RAW_SCRIPTS = {
  rawSend: {
    numberOfKeys: 2,
    lua: `local t = redis.call('TIME')
local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', ARGV[1] .. 'm:' .. ARGV[2], 'p', ARGV[3], 's', seq, 'e', t[1] * 1000 + math.floor(t[2] / 1000), 'a', 0)
redis.call('ZADD', KEYS[1], seq, ARGV[2])`,
  },
  rawReceive: {
    numberOfKeys: 2,
    lua: `local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], redis.call('HGET', ARGV[1] .. 'm:' .. id, 's'), id)
end
local popped = redis.call('ZPOPMIN', KEYS[1])
if not popped[1] then return false end
local id = popped[1]
local m = ARGV[1] .. 'm:' .. id
local attempts = redis.call('HINCRBY', m, 'a', 1)
redis.call('HSET', m, 'r', ARGV[3])
redis.call('ZADD', KEYS[2], now + ARGV[2], id)
local f = redis.call('HMGET', m, 'p', 'e')
return {id, f[1], attempts, f[2]}`,
  },
  rawAck: {
    numberOfKeys: 1,
    lua: `local m = ARGV[1] .. 'm:' .. ARGV[2]
if redis.call('HGET', m, 'r') ~= ARGV[3] then return 0 end
redis.call('DEL', m)
redis.call('ZREM', KEYS[1], ARGV[2])
return 1`,
  },
  rawPublish: {
    numberOfKeys: 2,
    lua: `local seq = redis.call('INCR', KEYS[2])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('XADD', KEYS[1], 'MAXLEN', '=', ARGV[2], seq .. '-1', 'm', ARGV[1], 't', now)
redis.call('PUBLISH', ARGV[3], seq .. ':' .. now .. ':' .. ARGV[1])`,
  },
};
type RawCommand = (...args: (string | number)[]) => Promise<unknown>;

async function rawRedisOps(ctx: Context): Promise<OpTable> {
  const client: Redis = ctx.redis();
  const subscriber: Redis = ctx.redis();
  for (const [name, script] of Object.entries(RAW_SCRIPTS)) client.defineCommand(name, script);
  const command = (name: keyof typeof RAW_SCRIPTS) =>
    (client as unknown as Record<string, RawCommand>)[name]!.bind(client);
  const [send, receive, ack, publish] = [
    command('rawSend'),
    command('rawReceive'),
    command('rawAck'),
    command('rawPublish'),
  ];
  const p = `${ctx.prefix}raw:`;
  const q = `${p}{q}:`;
  for (let i = 0; i < KEYS; i++) await client.set(`${p}kv:${i}`, TEXT);
  await client.zadd(`${p}{s}:clusters`, Date.now() + 3_600_000, 'bench-active');
  const deliveries = new Deliveries();
  const live = `${p}{e}:live`;
  await subscriber.subscribe(live);
  subscriber.on('message', (_channel: string, text: string) => {
    const a = text.indexOf(':');
    const b = text.indexOf(':', a + 1);
    deliveries.deliver((JSON.parse(text.slice(b + 1)) as { n: number }).n);
  });
  return {
    'kv.get': async (i) => JSON.parse((await client.get(`${p}kv:${i % KEYS}`)) ?? 'null'),
    'kv.set': (i) => client.set(`${p}kv:${i % KEYS}`, JSON.stringify(VALUE)),
    // One MULTI: the session hash with its expiry, and the cluster's score.
    'session create': (i) => {
      const id = randomUUID();
      const now = Date.now();
      return client
        .multi()
        .hset(`${p}{s}:sess:${id}`, 'c', `c${i % 10}`, 'u', 'bench', 'd', '{}', 't', now, 'e', now + 600_000)
        .pexpire(`${p}{s}:sess:${id}`, 600_000)
        .zadd(`${p}{s}:clusters`, now + 600_000, `c${i % 10}`)
        .exec();
    },
    'queue pop': async () => {
      await send(`${q}ready`, `${q}seq`, q, randomUUID(), JSON.stringify(VALUE));
      for (;;) {
        const receipt = randomUUID();
        const got = (await receive(`${q}ready`, `${q}leased`, q, 30_000, receipt)) as string[] | null;
        if (got) {
          JSON.parse(got[1]!);
          return ack(`${q}leased`, q, got[0]!, receipt);
        }
      }
    },
    'pub/sub': async (i) => {
      const delivered = deliveries.wait(i);
      await publish(`${p}{e}:stream`, `${p}{e}:seq`, JSON.stringify({ n: i, ...VALUE }), 1000, live);
      await delivered;
    },
    'cluster active': async () =>
      Number(await client.zscore(`${p}{s}:clusters`, 'bench-active')) > Date.now(),
  };
}

/**
 * The tables a careful hand-written version would use: the library's kv, sessions and queue
 * tables, with their indexes (each index is written by every insert, so it is durable work).
 */
const RAW_DDL = (s: string) => `
  CREATE SCHEMA "${s}";
  CREATE TABLE "${s}".kv_store (key text COLLATE "C" PRIMARY KEY, value text NOT NULL, expires_at timestamptz);
  CREATE INDEX ON "${s}".kv_store (expires_at) WHERE expires_at IS NOT NULL;
  CREATE TABLE "${s}".sessions (session_id text COLLATE "C" PRIMARY KEY, cluster_id text COLLATE "C" NOT NULL,
    user_id text, correlation_id text COLLATE "C", service_identity text, data text NOT NULL,
    ttl_ms bigint NOT NULL, created_at timestamptz NOT NULL, last_activity timestamptz NOT NULL,
    expires_at timestamptz NOT NULL);
  CREATE INDEX ON "${s}".sessions (cluster_id, expires_at);
  CREATE INDEX ON "${s}".sessions (correlation_id) WHERE correlation_id IS NOT NULL;
  CREATE INDEX ON "${s}".sessions (expires_at);
  CREATE TABLE "${s}".queues (id uuid PRIMARY KEY, queue text COLLATE "C" NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY, payload text NOT NULL, state text NOT NULL DEFAULT 'ready',
    attempts integer NOT NULL DEFAULT 0, receipt uuid, enqueued_at timestamptz NOT NULL,
    visible_at timestamptz NOT NULL, died_at timestamptz) WITH (fillfactor = 70);
  CREATE INDEX ON "${s}".queues (queue, seq) WHERE state <> 'dead';
  CREATE INDEX ON "${s}".queues (queue, died_at, seq) WHERE state = 'dead';
  CREATE TABLE "${s}".event_channels (channel text COLLATE "C" PRIMARY KEY, last_id bigint NOT NULL);
  CREATE TABLE "${s}".events (channel text COLLATE "C" NOT NULL, id bigint NOT NULL, message text NOT NULL,
    published_at timestamptz NOT NULL, PRIMARY KEY (channel, id));`;

/** A pool with `pg.Pool`'s query API: node-postgres, or the Neon driver's Pool. */
type PoolLike = Pick<pg.Pool, 'query' | 'connect'>;

async function rawPgOps(
  ctx: Context,
  pool: PoolLike,
  listener: pg.ClientBase,
  tag: string,
  counter: StatementCounter,
): Promise<OpTable> {
  const s = ctx.schema();
  await pool.query(RAW_DDL(s));
  const q = (name: string, text: string) => (values: unknown[]) => {
    counter.statement(text);
    return pool.query({ name: `${tag}_${name}`, text, values });
  };
  const get = q(
    'get',
    `SELECT value FROM "${s}".kv_store WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())`,
  );
  const set = q(
    'set',
    `INSERT INTO "${s}".kv_store (key, value) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
  );
  const create = q(
    'create',
    `INSERT INTO "${s}".sessions (session_id, cluster_id, user_id, data, ttl_ms, created_at, last_activity, expires_at)
     VALUES ($1, $2, $3, $4, 600000, now(), now(), now() + interval '10 minutes') RETURNING *`,
  );
  // The library's own queue statements, sent one per call: send, claim, ack; the claim and the
  // ack commit asynchronously, as the library's do by default (postgresql.leaseCommit).
  const plans = queuePlans(`"${s}".queues`, `"${s}".queue_dedup`, `${s}_queue`, 'async');
  const send = q('send', plans.sendMany);
  const ackAndClaim = q('ack_claim', plans.ackAndClaim);
  // The durable work of a publish: the channel's counter, the event kept in history (bounded),
  // and a notification that carries it.
  const publish = q(
    'publish',
    `WITH c AS (
       INSERT INTO "${s}".event_channels AS c (channel, last_id) VALUES ($1, 1)
       ON CONFLICT (channel) DO UPDATE SET last_id = c.last_id + 1 RETURNING last_id
     ), e AS (
       INSERT INTO "${s}".events (channel, id, message, published_at) SELECT $1, last_id, $2, now() FROM c
     ), t AS (
       DELETE FROM "${s}".events WHERE channel = $1 AND id <= (SELECT last_id FROM c) - 1000
     )
     SELECT pg_notify($1, last_id::text || E'\n' || $2) FROM c`,
  );
  const active = q(
    'active',
    `SELECT EXISTS (SELECT 1 FROM "${s}".sessions WHERE cluster_id = $1 AND expires_at > now()) AS active`,
  );
  for (let i = 0; i < KEYS; i++) await set([`k${i}`, TEXT]);
  await create([randomUUID(), 'bench-active', null, '{}']);
  await pool.query(`UPDATE "${s}".sessions SET expires_at = now() + interval '1 hour'`);
  const deliveries = new Deliveries();
  const channel = `${s}_events`;
  await listener.query(`LISTEN "${channel}"`);
  listener.on('notification', (n) => {
    if (n.channel !== channel || !n.payload) return;
    const message = JSON.parse(n.payload.slice(n.payload.indexOf('\n') + 1)) as { n: number };
    deliveries.deliver(message.n);
  });
  return {
    'kv.get': async (i) => {
      const { rows } = await get([`k${i % KEYS}`]);
      return rows[0] && JSON.parse(rows[0].value);
    },
    'kv.set': (i) => set([`k${i % KEYS}`, JSON.stringify(VALUE)]),
    'session create': (i) => create([randomUUID(), `c${i % 10}`, 'bench', '{}']),
    'queue pop': async () => {
      await send([[randomUUID()], ['bench'], [JSON.stringify(VALUE)], [0]]);
      for (;;) {
        const { rows } = await ackAndClaim(['bench', 1, 30_000, 5, [], [], []]);
        const [m] = JSON.parse(rows[0].claimed) as { id: string; receipt: string; payload: string }[];
        if (!m) continue;
        JSON.parse(m.payload);
        const acked = await ackAndClaim(['', 0, 0, 5, ['bench'], [m.id], [m.receipt]]);
        return (JSON.parse(acked.rows[0].acked) as string[]).length === 1;
      }
    },
    'pub/sub': async (i) => {
      const delivered = deliveries.wait(i);
      await publish([channel, JSON.stringify({ n: i, ...VALUE })]);
      await delivered;
    },
    'cluster active': async () => (await active(['bench-active'])).rows[0]?.active === true,
  };
}

/** A Neon driver Pool through the local proxy, configured as the library configures its own. */
async function neonPool(ctx: Context): Promise<{ pool: PoolLike; listener: pg.ClientBase }> {
  const neon = await import('@neondatabase/serverless');
  const ws = (await import('ws')).default;
  const proxy = await ctx.wsProxy();
  class LocalClient extends neon.Client {
    constructor(config?: ConstructorParameters<typeof neon.Client>[0]) {
      super(config);
      this.neonConfig.webSocketConstructor = ws as never;
      this.neonConfig.useSecureWebSocket = false;
      this.neonConfig.wsProxy = (host, port) => `${proxy}?address=${host}:${port}`;
      this.neonConfig.pipelineConnect = false;
      this.neonConfig.coalesceWrites = false;
    }
  }
  const pool = new neon.Pool({ connectionString: DATABASE_URL, max: PG_POOL });
  pool.Client = LocalClient;
  pool.on('error', () => {});
  const listener = new LocalClient({ connectionString: DATABASE_URL });
  await listener.connect();
  ctx.defer(async () => {
    await listener.end();
    await pool.end();
  });
  return { pool: pool as unknown as PoolLike, listener: listener as unknown as pg.ClientBase };
}

/**
 * Every group measured in rounds: each repetition measures each op at each concurrency on every
 * group in turn. Within a group (a library backend and its raw baseline) the calls alternate,
 * one of each in turn (see sampleInterleaved), so the ratio compares like with like.
 */
async function runGroups(ctx: Context, groups: Member[][]): Promise<void> {
  const samples = new Map<string, Sample[]>();
  const { reps, ...budget } = ctx.budget;
  for (let rep = 0; rep < reps; rep++) {
    for (const op of OPS) {
      for (const concurrency of CONCURRENCY) {
        for (const group of groups) {
          for (const [, , counter] of group) if (counter) counter.measuring = `${op}\0${concurrency}`;
          const got = await sampleInterleaved(
            group.map(([, ops]) => ops[op]),
            budget,
            concurrency,
          );
          for (const [, , counter] of group) if (counter) counter.measuring = undefined;
          group.forEach(([backend], g) => {
            const key = `${backend}\0${op}\0${concurrency}`;
            samples.set(key, [...(samples.get(key) ?? []), got[g]!]);
          });
        }
      }
    }
    ctx.log(`  round ${rep + 1} of ${reps} done`);
  }
  for (const [backend, , counter] of groups.flat()) {
    for (const op of OPS) {
      for (const concurrency of CONCURRENCY) {
        const m = combine(samples.get(`${backend}\0${op}\0${concurrency}`) ?? []);
        const counted = counter?.perCall(op, concurrency);
        ctx.results.latency.push({ backend, op, concurrency, ...m, ...counted });
        const perCall = counted
          ? `  ${counted.statementsPerCall.toFixed(2)} statements, ${counted.commitsPerCall.toFixed(2)} commits (${counted.asyncCommitsPerCall.toFixed(2)} asynchronous) per call`
          : '';
        ctx.log(
          `  ${backend.padEnd(20)} ${op.padEnd(15)} c${concurrency}  p50 ${m.p50.toFixed(3)} ms  p99 ${m.p99.toFixed(3)} ms  ${Math.round(m.opsPerSec)} ops/s${perCall}`,
        );
      }
    }
  }
}

export async function matrixSuite(ctx: Context): Promise<void> {
  const groups: Member[][] = [];
  for (const backend of ctx.options.backends ?? BACKENDS) {
    const why = ctx.unavailable(backend);
    if (why) {
      ctx.skip(`matrix ${backend}`, why);
      continue;
    }
    const group: Member[] = [];
    if (backend === 'postgresql (pg)') {
      // The library over a Sql that counts what it sends, like the raw row beside it.
      const counter = new StatementCounter();
      const storage = await ctx.storage(backend, {}, async (config) => {
        const sql = await createSql(resolveConfig(config).postgresql);
        ctx.defer(() => sql.close());
        return { postgresql: { sql: counter.sql(sql) } };
      });
      group.push([backend, counter.calls(await libraryOps(storage)), counter]);
    } else group.push([backend, await libraryOps(await ctx.storage(backend))]);
    const raw = await rawBaseline(ctx, backend);
    if (raw) group.push(raw);
    groups.push(group);
  }
  await runGroups(ctx, groups);
}
async function rawBaseline(ctx: Context, backend: BackendName): Promise<Member | undefined> {
  if (backend === 'redis') return ['ioredis (raw)', await rawRedisOps(ctx)];
  if (backend === 'postgresql (pg)') {
    const listener = (await ctx.pgPool(1).connect()) as pg.ClientBase;
    ctx.defer(async () => (listener as pg.PoolClient).release());
    const counter = new StatementCounter();
    return ['pg (raw)', counter.calls(await rawPgOps(ctx, ctx.pgPool(), listener, 'pg', counter)), counter];
  }
  if (backend === 'postgresql (neon)') {
    const { pool, listener } = await neonPool(ctx);
    return ['neon (raw)', await rawPgOps(ctx, pool, listener, 'neon', new StatementCounter())];
  }
  return undefined;
}
