/**
 * Many Lambda containers behind one transaction pooler: each container is its own Storage with
 * a pool of one or two connections (as a Lambda container holds), many of them in this process,
 * all sharing one schema through PgBouncer. Each container serves invocations one after another
 * (a container handles one request at a time); an invocation is a short mix of kv, sessions,
 * queues and events calls, some of them concurrent (what a pool of two is for).
 *
 * Afterwards the data is checked: every incr counted once, every acknowledged message received
 * once, every container's last write readable. `sampleServers` is polled throughout, so the
 * report says how many server connections the pooler held at most.
 */
import { randomUUID } from 'node:crypto';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { quantile } from '../lib/measure.js';

export interface FleetOptions {
  /** PostgreSQL through the pooler. */
  url: string;
  /** Schema shared by every container (migrated by the fleet first). */
  schema: string;
  containers: number;
  /** Invocations each container serves, one after another. */
  invocations: number;
  /** Server connections the pooler holds now, and clients waiting for one (its admin console). */
  sampleServers: () => Promise<{ servers: number; waiting: number }>;
  /** Containers start spread over this many ms (cold starts do not all land at once). */
  rampMs?: number;
  /** Seed of the workload's choices (the same seed, the same mix). */
  seed?: number;
}

export interface OpLatency {
  op: string;
  count: number;
  p50: number;
  p99: number;
}

export interface FleetReport {
  containers: number;
  invocations: number;
  operations: number;
  errors: number;
  /** The first few errors, as `op: message`. */
  errorSamples: string[];
  durationMs: number;
  latency: { p50: number; p99: number; byOp: OpLatency[] };
  /** Most server connections the pooler held in any sample, and clients waiting at most. */
  maxServers: number;
  maxWaiting: number;
  samples: number;
  /** What the data says afterwards; each holds when `ok`. */
  checks: { name: string; expected: number; actual: number; ok: boolean }[];
}

/** A small seeded generator (mulberry32): the workload is repeatable. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const QUEUE = 'fleet-jobs';
const COUNTER = 'fleet-counter';
const CLUSTERS = 20;
const CHANNELS = 5;

export async function runFleet(options: FleetOptions): Promise<FleetReport> {
  const rand = random(options.seed ?? 1);
  const config = (poolSize: number, migrate = false) => ({
    backend: 'postgresql' as const,
    postgresql: {
      url: options.url,
      schema: options.schema,
      pooler: 'transaction' as const,
      poolSize,
      migrate,
      connectTimeout: 10,
      commandTimeout: 30,
    },
  });
  const setup = createStorage(config(1, true));
  await setup.health();

  const latencies = new Map<string, number[]>();
  const errorSamples: string[] = [];
  let errors = 0;
  let operations = 0;
  const tally = { incr: 0, sent: new Set<string>(), acked: new Set<string>(), ackedTwice: 0 };
  const lastWrite = new Map<string, number>();

  /** Runs and times `call`: its answer, or undefined when it failed (counted as an error). */
  const timed = async <T>(op: string, call: () => Promise<T>): Promise<{ value: T } | undefined> => {
    const started = performance.now();
    try {
      const value = await call();
      const list = latencies.get(op) ?? [];
      list.push(performance.now() - started);
      latencies.set(op, list);
      return { value };
    } catch (error) {
      errors++;
      if (errorSamples.length < 10) errorSamples.push(`${op}: ${(error as Error).message}`);
      return undefined;
    } finally {
      operations++;
    }
  };

  /** One invocation of container `c`: a mix picked by `pick`. */
  const invoke = async (storage: Storage, c: number, n: number, pick: number) => {
    const cluster = `cluster-${(c + n) % CLUSTERS}`;
    if (pick < 0.3) {
      const key = `fleet-kv-${c}`;
      if (await timed('kv.set', () => storage.kv.set(key, n, { ttl: 600 }))) lastWrite.set(key, n);
      const [read, added] = await Promise.all([
        timed('kv.get', () => storage.kv.get(key)),
        timed('kv.incr', () => storage.kv.incr(COUNTER)),
      ]);
      if (added) tally.incr++;
      if (read && lastWrite.get(key) === n && read.value !== n) {
        errors++;
        errorSamples.push(`kv.get: read ${JSON.stringify(read.value)} after writing ${n}`);
      }
    } else if (pick < 0.55) {
      const session = await timed('sessions.create', () =>
        storage.sessions.create({ clusterId: cluster, userId: `u${c}`, ttl: 600, data: { n } }),
      );
      if (session) {
        const id = session.value.sessionId;
        await Promise.all([
          timed('sessions.get', () => storage.sessions.get(id)),
          timed('sessions.isClusterActive', () => storage.sessions.isClusterActive(cluster)),
        ]);
        await timed('sessions.keepAlive', () => storage.sessions.keepAlive(id));
      }
    } else if (pick < 0.85) {
      const payload = { id: randomUUID(), c, n };
      const sent = await timed('queues.send', () => storage.queues.send(QUEUE, payload));
      if (sent) tally.sent.add(payload.id);
      const received = await timed('queues.receive', () =>
        storage.queues.receive(QUEUE, { max: 2, visibilityTimeout: 60 }),
      );
      for (const message of received?.value ?? []) {
        if (await timed('queues.ack', () => storage.queues.ack(QUEUE, message.id, message.receipt))) {
          const id = (message.payload as { id: string }).id;
          if (tally.acked.has(id)) tally.ackedTwice++;
          tally.acked.add(id);
        }
      }
    } else {
      const channel = `fleet-events-${c % CHANNELS}`;
      await timed('events.publish', () => storage.events.publish(channel, { c, n }));
      await timed('events.history', () => storage.events.history(channel, { limit: 10 }));
    }
  };

  let sampling = true;
  const sampled = { maxServers: 0, maxWaiting: 0, samples: 0 };
  const sampler = (async () => {
    while (sampling) {
      try {
        const { servers, waiting } = await options.sampleServers();
        sampled.maxServers = Math.max(sampled.maxServers, servers);
        sampled.maxWaiting = Math.max(sampled.maxWaiting, waiting);
        sampled.samples++;
      } catch {
        // A sample that failed says nothing either way.
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();

  const started = performance.now();
  const plans = Array.from({ length: options.containers }, (_, c) => ({
    c,
    poolSize: rand() < 0.5 ? 1 : 2,
    delay: rand() * (options.rampMs ?? 500),
    picks: Array.from({ length: options.invocations }, () => rand()),
  }));
  const containers: Storage[] = [];
  try {
    await Promise.all(
      plans.map(async ({ c, poolSize, delay, picks }) => {
        await new Promise((resolve) => setTimeout(resolve, delay));
        const storage = createStorage(config(poolSize));
        containers.push(storage);
        for (const [n, pick] of picks.entries()) await invoke(storage, c, n, pick);
      }),
    );
  } finally {
    sampling = false;
    await sampler;
    await Promise.allSettled(containers.map((s) => s.close()));
  }
  const durationMs = performance.now() - started;

  // What is left in the queue is what was sent and not yet received: take it now.
  for (;;) {
    const batch = await setup.queues.receive(QUEUE, { max: 100, visibilityTimeout: 60 });
    if (batch.length === 0) break;
    for (const message of batch) {
      await setup.queues.ack(QUEUE, message.id, message.receipt);
      const id = (message.payload as { id: string }).id;
      if (tally.acked.has(id)) tally.ackedTwice++;
      tally.acked.add(id);
    }
  }
  const counter = Number((await setup.kv.get(COUNTER)) ?? 0);
  let lastWritesRead = 0;
  for (const [key, n] of lastWrite) if ((await setup.kv.get(key)) === n) lastWritesRead++;
  const stats = await setup.queues.stats(QUEUE);
  await setup.close();

  const all = [...latencies.values()].flat().sort((a, b) => a - b);
  const byOp = [...latencies.entries()]
    .map(([op, list]) => {
      const sorted = list.sort((a, b) => a - b);
      return { op, count: sorted.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
    })
    .sort((a, b) => a.op.localeCompare(b.op));
  const check = (name: string, expected: number, actual: number) => ({
    name,
    expected,
    actual,
    ok: expected === actual,
  });
  const sentAndReceived = [...tally.sent].filter((id) => tally.acked.has(id)).length;
  return {
    containers: options.containers,
    invocations: options.containers * options.invocations,
    operations,
    errors,
    errorSamples,
    durationMs,
    latency: { p50: quantile(all, 0.5), p99: quantile(all, 0.99), byOp },
    ...sampled,
    checks: [
      check('kv.incr acknowledged = counter', tally.incr, counter),
      check('queue messages sent = received and acked', tally.sent.size, sentAndReceived),
      check('queue messages acked twice', 0, tally.ackedTwice),
      check('queue left over (depth + in flight)', 0, stats.depth + stats.inFlight),
      check("containers' last kv writes readable", lastWrite.size, lastWritesRead),
    ],
  };
}
