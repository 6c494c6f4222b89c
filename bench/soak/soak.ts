/**
 * A bounded load run: `npm start` (serverless-offline, on free loopback ports) on a real server
 * backend, driven for `minutes` at `rate` calls a second by the mix of bench/soak/traffic.ts,
 * while the resident memory of its process tree and its connections to PostgreSQL/Redis are
 * sampled. Stops by itself: the number of calls is fixed (minutes × 60 × rate), every wait has
 * a ceiling, and the service, its schema or key prefix are removed at the end.
 *
 * Verdict (timings are reported, never judged):
 * - any 5xx, or a call without an HTTP answer, fails the run;
 * - a queue message acknowledged at send and never received (lost), or received twice
 *   (duplicated), fails it; so does a publish acknowledged and not received by every subscriber;
 * - connections to PostgreSQL/Redis above what the Lambda instances can hold fail it (see
 *   `connectionBound`); growth (first against last third of the samples) is reported.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import { resolveConfig } from '../../lib/config/index.js';
import { applySchemaMigrations } from '../../lib/storage/postgresql/schema-migrations.js';
import { createSql, quoteIdent } from '../../lib/storage/postgresql/sql.js';
import { testDatabaseUrl } from '../../test/support/backends.js';
import { type Offline, startOffline } from '../../test/support/servers/offline.js';
import { quantile } from '../lib/measure.js';
import { sampleTree, type TreeSample } from './proc.js';
import { Traffic } from './traffic.js';

export type SoakBackend = 'postgresql' | 'redis' | 'hybrid';

export interface SoakOptions {
  backend: SoakBackend;
  minutes: number;
  /** Calls started per second, whatever the service's pace. */
  rate: number;
  log?: (line: string) => void;
}

/**
 * The connection bound a run is held to. A Lambda instance serves one call at a time with a
 * storage of its own, and serverless-offline starts another instance of a function only when all
 * of its instances are busy: instances ≤ the most calls in flight per function, summed, plus one
 * per function for the warm-up and the WebSocket functions. Each storage holds at most
 * `postgresql.poolSize` + 1 (its LISTEN) PostgreSQL connections, and 2 Redis connections
 * (commands, subscriber; this load never long-polls, so no blocking connection). Connections
 * above instances × that are held by no live storage: leaked. Memory is reported, not judged:
 * it follows how many instances offline keeps, which follows the load.
 */
const REDIS_CONNECTIONS_PER_STORAGE = 2;
const { FUNCTIONS } = createRequire(import.meta.url)('../../deploy/functions.cjs') as {
  FUNCTIONS: Record<string, unknown>;
};
const FUNCTION_COUNT = Object.keys(FUNCTIONS).length;
/**
 * Calls running at once at most; beyond it a scheduled call is skipped and counted. It bounds the
 * Lambda instances offline starts, and so the connections the run opens on servers others share
 * (at 50/s on 2 busy cores, a cap of 32 let PostgreSQL connections reach 90).
 */
const MAX_IN_FLIGHT = 16;
const SAMPLE_EVERY_MS = 2000;
/** Ceiling for subscribers to receive what was published before the end. */
const DELIVERY_CEILING_MS = 30_000;
const WARM_UP_ROUNDS = 5;

export interface Growth {
  /** Mean of the first third of the samples, and of the last third. */
  first: number;
  last: number;
  max: number;
  /** last ÷ first. */
  ratio: number;
  /** A sample above this fails the run (connections only). */
  bound?: number;
}

export interface RouteReport {
  route: string;
  calls: number;
  p50Ms: number;
  p99Ms: number;
  status5xx: number;
  unexpected4xx: number;
  noAnswer: number;
  /** Statuses the route should not answer, with counts, and the first such body. */
  otherStatuses: Record<number, number>;
  firstOtherBody?: string;
}

export interface SoakReport {
  backend: SoakBackend;
  minutes: number;
  rate: number;
  scheduled: number;
  skipped: number;
  durationMs: number;
  achievedRate: number;
  routes: RouteReport[];
  queue: { sent: number; received: number; acked: number; lost: number; duplicated: number };
  delivery: { expected: number; received: number; lost: number; duplicated: number };
  samples: ({ atMs: number } & TreeSample)[];
  growth: { rssBytes: Growth; connections: Record<string, Growth> };
  ok: boolean;
  failures: string[];
}

interface Service {
  offline: Offline;
  /** Server ports whose connections are sampled, by name. */
  ports: Record<string, number>;
  cleanup(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function startService(backend: SoakBackend): Promise<Service> {
  const databaseUrl = testDatabaseUrl();
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const schema = `kst_soak_${randomBytes(4).toString('hex')}`;
  const keyPrefix = `kst:soak:${randomBytes(4).toString('hex')}:`;
  const usesPg = backend !== 'redis';
  const usesRedis = backend !== 'postgresql';
  const adminSql = () =>
    createSql(resolveConfig({ postgresql: { url: databaseUrl, listen: false } }).postgresql);

  if (usesPg) {
    const sql = await adminSql();
    try {
      await applySchemaMigrations(sql, { schema });
    } finally {
      await sql.close();
    }
  }
  const cleanup = async () => {
    if (usesPg) {
      const sql = await adminSql();
      try {
        await sql.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
      } finally {
        await sql.close();
      }
    }
    if (usesRedis) await deletePrefix(redisUrl, keyPrefix);
  };
  try {
    const offline = await startOffline({
      env: {
        STORAGE_BACKEND: backend,
        ...(usesPg ? { DATABASE_URL: databaseUrl, POSTGRES_DRIVER: 'pg', POSTGRES_SCHEMA: schema } : {}),
        ...(usesRedis ? { REDIS_URL: redisUrl, KEY_PREFIX: keyPrefix } : {}),
      },
    });
    const ports: Record<string, number> = {};
    if (usesPg) ports.postgresql = Number(new URL(databaseUrl).port || 5432);
    if (usesRedis) ports.redis = Number(new URL(redisUrl).port || 6379);
    return { offline, ports, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function deletePrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/**
 * Each function's first call loads its bundle in a new worker (slow on a busy machine, at times
 * past offline's Lambda timeout): the whole mix runs until a round answers without a 5xx, so
 * the measured run meets warm functions. Nothing is judged here.
 */
async function warmUp(offline: Offline, log: (line: string) => void): Promise<void> {
  for (let round = 1; round <= WARM_UP_ROUNDS; round++) {
    const traffic = new Traffic(offline.baseUrl, offline.wsUrl, offline.adminToken, MAX_IN_FLIGHT);
    try {
      await traffic.subscribe();
      for (let i = 0; i < 20; i++) await traffic.fire();
      await traffic.drainQueue();
    } catch (error) {
      log(`warm-up round ${round}: ${(error as Error).message}`);
      continue;
    } finally {
      traffic.close();
    }
    const failed = [...traffic.routes.values()].reduce((n, r) => n + r.status5xx + r.noAnswer, 0);
    if (failed === 0) return;
    log(`warm-up round ${round}: ${failed} calls failed, again`);
  }
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => {});
  const service = await startService(options.backend);
  const { offline } = service;
  const samples: SoakReport['samples'] = [];
  try {
    log(`${options.backend}: service up at ${offline.baseUrl}; warming up`);
    await warmUp(offline, log);
    const traffic = new Traffic(offline.baseUrl, offline.wsUrl, offline.adminToken, MAX_IN_FLIGHT);
    await traffic.subscribe();

    const scheduled = Math.round(options.minutes * 60 * options.rate);
    const intervalMs = 1000 / options.rate;
    log(`${options.backend}: ${scheduled} calls at ${options.rate}/s over ${options.minutes} min`);
    const started = performance.now();
    const sample = () =>
      samples.push({
        atMs: Math.round(performance.now() - started),
        ...sampleTree(offline.pid, Object.values(service.ports)),
      });
    sample();
    const sampler = setInterval(sample, SAMPLE_EVERY_MS);
    const pending = new Set<Promise<void>>();
    try {
      for (let i = 0; i < scheduled; i++) {
        const wait = started + i * intervalMs - performance.now();
        if (wait > 0) await sleep(wait);
        const call = traffic.fire();
        if (call) {
          pending.add(call);
          void call.finally(() => pending.delete(call));
        }
      }
      await Promise.all(pending);
    } finally {
      clearInterval(sampler);
    }
    sample();
    const durationMs = performance.now() - started;

    const deliveryDeadline = performance.now() + DELIVERY_CEILING_MS;
    while (!traffic.deliveredAll() && performance.now() < deliveryDeadline) await sleep(200);
    await traffic.drainQueue();
    traffic.close();

    return judge(options, traffic, samples, service.ports, scheduled, durationMs);
  } finally {
    await offline.stop();
    await service.cleanup();
  }
}

function judge(
  options: SoakOptions,
  traffic: Traffic,
  samples: SoakReport['samples'],
  ports: Record<string, number>,
  scheduled: number,
  durationMs: number,
): SoakReport {
  const routes: RouteReport[] = [...traffic.routes.values()].map((r) => {
    const sorted = [...r.latencies].sort((a, b) => a - b);
    return {
      route: r.route,
      calls: r.calls,
      p50Ms: quantile(sorted, 0.5),
      p99Ms: quantile(sorted, 0.99),
      status5xx: r.status5xx,
      unexpected4xx: r.unexpected4xx,
      noAnswer: r.noAnswer,
      otherStatuses: r.otherStatuses,
      ...(r.firstOtherBody === undefined ? {} : { firstOtherBody: r.firstOtherBody }),
    };
  });
  const { queue, delivery } = traffic;
  const lost = [...queue.sent].filter((id) => !queue.received.has(id)).length;
  const duplicated = [...queue.received.values()].filter((n) => n > 1).length;
  const instances = [...traffic.peakInFlight.values()].reduce((a, b) => a + b, 0) + FUNCTION_COUNT;
  const perStorage: Record<string, number> = {
    postgresql: resolveConfig({}).postgresql.poolSize + 1,
    redis: REDIS_CONNECTIONS_PER_STORAGE,
  };
  const growth = {
    rssBytes: growthOf(samples.map((s) => s.rssBytes)),
    connections: Object.fromEntries(
      Object.entries(ports).map(([name, port]) => [
        name,
        growthOf(
          samples.map((s) => s.connections[port] ?? 0),
          instances * perStorage[name]!,
        ),
      ]),
    ),
  };

  const failures: string[] = [];
  for (const r of routes) {
    if (r.status5xx > 0) failures.push(`${r.route}: ${r.status5xx} answers 5xx`);
    if (r.noAnswer > 0) failures.push(`${r.route}: ${r.noAnswer} calls without an answer`);
  }
  if (lost > 0) failures.push(`queue: ${lost} acknowledged sends never received`);
  if (duplicated > 0) failures.push(`queue: ${duplicated} messages received twice`);
  const undelivered = Math.max(0, delivery.expected - delivery.received);
  if (undelivered > 0)
    failures.push(`WebSocket: ${undelivered} of ${delivery.expected} expected frames not received`);
  if (delivery.duplicates > 0) failures.push(`WebSocket: ${delivery.duplicates} frames received twice`);
  for (const [name, g] of Object.entries(growth.connections)) {
    if (g.bound !== undefined && g.max > g.bound)
      failures.push(
        `${name} connections: ${g.max} sampled, above ${g.bound} (${instances} Lambda instances at most × ${perStorage[name]})`,
      );
  }

  return {
    backend: options.backend,
    minutes: options.minutes,
    rate: options.rate,
    scheduled,
    skipped: traffic.skipped,
    durationMs: Math.round(durationMs),
    achievedRate: (scheduled - traffic.skipped) / (durationMs / 1000),
    routes,
    queue: { sent: queue.sent.size, received: queue.received.size, acked: queue.acked, lost, duplicated },
    delivery: {
      expected: delivery.expected,
      received: delivery.received,
      lost: undelivered,
      duplicated: delivery.duplicates,
    },
    samples,
    growth,
    ok: failures.length === 0,
    failures,
  };
}

/** First third against last third of `values` (at least one sample each). */
export function growthOf(values: number[], bound?: number): Growth {
  const third = Math.max(1, Math.floor(values.length / 3));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = mean(values.slice(0, third));
  const last = mean(values.slice(-third));
  return {
    first,
    last,
    max: Math.max(...values),
    ratio: first === 0 ? (last === 0 ? 1 : Number.POSITIVE_INFINITY) : last / first,
    ...(bound === undefined ? {} : { bound }),
  };
}
