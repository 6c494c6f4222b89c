/**
 * PostgreSQL restarted (fast, or immediate: a crash) while containers write: each container is a
 * Storage with a pool of two, running a kv writer (a new key per write) and an enqueuer (a new
 * message per send, a failed send retried with its dedup id until it is acknowledged). Nothing
 * reconnects them by hand: the pools find their dead connections and open new ones.
 *
 * Afterwards every acknowledged write is looked for: a kv key with its value, a message exactly
 * once (the queue is drained). Each restart reports how long the server was down and how long
 * after it was back the first new write succeeded.
 */
import pg from 'pg';
import { BackendUnavailableError } from '../../lib/errors.js';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';

export type ShutdownMode = 'fast' | 'immediate';

export interface RestartOptions {
  /** The PostgreSQL that is restarted (a private one). */
  url: string;
  schema: string;
  /** Stops and starts that server. */
  server: { stop(mode: ShutdownMode): Promise<void>; start(): Promise<void> };
  /** One restart per entry, in order, with `phaseMs` of writing before each and after the last. */
  modes: ShutdownMode[];
  phaseMs: number;
  containers: number;
}

export interface RestartTiming {
  mode: ShutdownMode;
  /** How long `pg_ctl stop` took. */
  stopMs: number;
  /** From the start command to the server answering a new connection (crash recovery included). */
  readyMs: number;
  /**
   * From the start command (the server stopped) to the first write begun after the stop being
   * acknowledged: server start-up (with crash recovery after `immediate`) plus the pools
   * replacing their dead connections.
   */
  recoveryMs: number;
  /** The gap callers saw: the last write acknowledged before the stop to the first one after. */
  gapMs: number;
}

export interface StoreTally {
  /** Acknowledged writes. */
  acknowledged: number;
  /** Acknowledged and missing (or, for kv, with another value). */
  lost: number;
  /** Found more than once. */
  duplicated: number;
  /** Failed without an answer, yet committed (allowed: the client could not know). */
  unacknowledgedFound: number;
}

export interface RestartReport {
  kv: StoreTally;
  queue: StoreTally;
  /** Calls that failed with a retryable BackendUnavailableError (the outage, as callers saw it). */
  failedCalls: number;
  /** Any other failure: none is expected. */
  unexpectedErrors: string[];
  restarts: RestartTiming[];
  /** Writes acknowledged after the last restart, by the same storages. */
  acknowledgedAfterLastRestart: number;
  durationMs: number;
}

const QUEUE = 'restart-jobs';
const RETRY_MS = 20;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runRestartScenario(options: RestartOptions): Promise<RestartReport> {
  const config = (migrate: boolean) => ({
    backend: 'postgresql' as const,
    postgresql: {
      url: options.url,
      schema: options.schema,
      poolSize: 2,
      migrate,
      connectTimeout: 2,
      commandTimeout: 10,
    },
  });
  const setup = createStorage(config(true));
  await setup.health();

  /** Completed writes: when each began and ended (performance.now()). */
  const successes: { started: number; ended: number }[] = [];
  const kvAcked = new Map<string, number>();
  const kvAttempted = new Set<string>();
  const queueAcked = new Set<string>();
  const unexpectedErrors: string[] = [];
  let failedCalls = 0;
  let running = true;

  /** Runs one write; answers whether it was acknowledged. A retryable failure is the outage. */
  const attempt = async (write: () => Promise<unknown>): Promise<boolean> => {
    const started = performance.now();
    try {
      await write();
      successes.push({ started, ended: performance.now() });
      return true;
    } catch (error) {
      if (error instanceof BackendUnavailableError && error.retryable) failedCalls++;
      else if (unexpectedErrors.length < 20) unexpectedErrors.push(String(error));
      await sleep(RETRY_MS);
      return false;
    }
  };
  const kvWriter = async (storage: Storage, c: number) => {
    for (let i = 0; running; i++) {
      const key = `w-${c}-${i}`;
      kvAttempted.add(key);
      if (await attempt(() => storage.kv.set(key, i))) kvAcked.set(key, i);
    }
  };
  const enqueuer = async (storage: Storage, c: number) => {
    for (let i = 0; running; i++) {
      const id = `m-${c}-${i}`;
      // The same dedup id on every try: a send that committed but whose answer was lost is not enqueued twice.
      while (!(await attempt(() => storage.queues.send(QUEUE, { id }, { dedupId: id })))) {}
      queueAcked.add(id);
    }
  };

  const started = performance.now();
  const containers = Array.from({ length: options.containers }, () => createStorage(config(false)));
  const writers = containers.flatMap((storage, c) => [kvWriter(storage, c), enqueuer(storage, c)]);
  const marks: { mode: ShutdownMode; stopAt: number; downAt: number; readyAt: number }[] = [];
  let lastUpAt = started;
  try {
    for (const mode of options.modes) {
      await sleep(options.phaseMs);
      const stopAt = performance.now();
      await options.server.stop(mode);
      const downAt = performance.now();
      const [readyAt] = await Promise.all([answering(options.url), options.server.start()]);
      lastUpAt = performance.now();
      marks.push({ mode, stopAt, downAt, readyAt });
    }
    await sleep(options.phaseMs);
  } finally {
    running = false;
    await Promise.all(writers);
    await Promise.all(containers.map((s) => s.close()));
  }
  const durationMs = performance.now() - started;

  const restarts = marks.map(({ mode, stopAt, downAt, readyAt }): RestartTiming => {
    const before = successes
      .filter((s) => s.ended <= downAt)
      .reduce((last, s) => Math.max(last, s.ended), stopAt);
    const after = successes
      .filter((s) => s.started >= downAt)
      .reduce((first, s) => Math.min(first, s.ended), Number.POSITIVE_INFINITY);
    return {
      mode,
      stopMs: downAt - stopAt,
      readyMs: readyAt - downAt,
      recoveryMs: after - downAt,
      gapMs: after - before,
    };
  });

  const kv = await checkKv(setup, kvAcked, kvAttempted);
  const queue = await checkQueue(setup, queueAcked);
  await setup.close();
  return {
    kv,
    queue,
    failedCalls,
    unexpectedErrors,
    restarts,
    acknowledgedAfterLastRestart: successes.filter((s) => s.started >= lastUpAt).length,
    durationMs,
  };
}

/** When (performance.now()) a new connection to `url` first runs a statement, polling every 20 ms. */
async function answering(url: string): Promise<number> {
  for (;;) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return performance.now();
    } catch {
      await sleep(20);
    } finally {
      await client.end().catch(() => {});
    }
  }
}

async function checkKv(
  storage: Storage,
  acked: Map<string, number>,
  attempted: Set<string>,
): Promise<StoreTally> {
  const keys = [...attempted];
  let lost = 0;
  let unacknowledgedFound = 0;
  for (let i = 0; i < keys.length; i += 1000) {
    const chunk = keys.slice(i, i + 1000);
    const values = await storage.kv.getMany(chunk);
    chunk.forEach((key, j) => {
      const value = values[j];
      if (acked.has(key)) {
        if (value !== acked.get(key)) lost++;
      } else if (value !== undefined) unacknowledgedFound++;
    });
  }
  return { acknowledged: acked.size, lost, duplicated: 0, unacknowledgedFound };
}

async function checkQueue(storage: Storage, acked: Set<string>): Promise<StoreTally> {
  const seen = new Map<string, number>();
  for (;;) {
    const batch = await storage.queues.receive(QUEUE, { max: 100, visibilityTimeout: 300 });
    if (batch.length === 0) break;
    for (const message of batch) {
      const { id } = message.payload as { id: string };
      seen.set(id, (seen.get(id) ?? 0) + 1);
      await storage.queues.ack(QUEUE, message.id, message.receipt);
    }
  }
  return {
    acknowledged: acked.size,
    lost: [...acked].filter((id) => !seen.has(id)).length,
    duplicated: [...seen.values()].filter((n) => n > 1).length,
    unacknowledgedFound: [...seen.keys()].filter((id) => !acked.has(id)).length,
  };
}
