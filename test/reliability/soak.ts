/**
 * Crash soak of queue consumers: `consumers` child processes (soak-consumer.ts, bundled once)
 * consume `messages` messages that this process sends, while a killer SIGKILLs one consumer at
 * a random moment and starts a new one, and the server is restarted once mid-run (its own
 * private Redis with `appendfsync always`, or its own PostgreSQL; for the hybrid, the Redis its
 * queues are routed to, falling back to PostgreSQL).
 *
 * Checked from the consumers' lines: every acknowledged send delivered and the queue empty at
 * the end (none lost, none dead), no delivery of a message before the lease of its previous
 * delivery ended (the receive that got it again returned no earlier than the previous receive
 * began plus the visibility timeout), and every duplicate explained by a kill, a failed ack or
 * a send made twice.
 *
 * PostgreSQL commits lease writes asynchronously by default (`postgresql.leaseCommit`), and the
 * restart is a crash, so it may undo a claim or an ack answered just before it
 * (docs/reliability.md, "Queue leases and server crashes"). With asynchronous lease commits, a
 * redelivery is also explained when the crash undid its previous delivery's claim (the queue's
 * attempt count shows it: soak-verdict.ts) or may have undone its ack; those are counted apart
 * (`crashRedeliveries`). An ack may have been undone only when no send acknowledged before the
 * crash began after the ack was answered: a send's commit waits for the write-ahead log up to
 * itself, and so makes every commit before it durable too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { build } from 'esbuild';
import pg from 'pg';
import type { StorageConfigInput } from '../../lib/config/index.js';
import { createStorage, hybridControl, type Storage } from '../../lib/storage/index.js';
import { testDatabaseUrl } from '../support/backends.js';
import { PrivatePostgres } from '../support/servers/postgres-server.js';
import { PrivateRedis } from '../support/servers/redis-server.js';
import { type Delivery, judge } from './soak-verdict.js';

export type SoakBackend = 'redis' | 'postgresql' | 'hybrid';

export interface SoakOptions {
  backend: SoakBackend;
  /** postgresql only: how lease writes commit (default `async`, the library's default). */
  leaseCommit?: 'async' | 'sync';
  messages?: number;
  consumers?: number;
  /** Lease of each delivery, seconds. */
  visibilitySeconds?: number;
  /** A consumer is killed every this many ms on average. */
  killEveryMs?: number;
  /** How long the server stays down in its restart, ms. */
  serverDownMs?: number;
  /** Give up after this long, ms. */
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface SoakReport {
  backend: SoakBackend;
  /** postgresql only. */
  leaseCommit?: 'async' | 'sync';
  messages: number;
  consumers: number;
  kills: number;
  serverRestarts: number;
  /** Sends acknowledged (each sequence number once), send attempts that failed (retried). */
  sent: number;
  sendFailures: number;
  deliveries: number;
  /** Consumers that exited without being killed (the library failed its process): exit code or signal, stderr's end. */
  consumerExits: string[];
  /** Sequence numbers delivered at least once. */
  delivered: number;
  /** Sequence numbers with an ack that was answered (the others' consumer died between ack and line). */
  ackRecorded: number;
  ackFailures: number;
  receiveErrors: number;
  /** Acknowledged sends never delivered and not left in the queue. */
  lost: number;
  /** Left in the queue or dead at the end (stats). */
  leftInQueue: number;
  dead: number;
  duplicates: number;
  /** Duplicates without a kill, failed ack or second send before them. */
  unexplainedDuplicates: number;
  /** Deliveries of a message before its previous delivery's lease could have ended, crash aside. */
  earlyRedeliveries: number;
  /** Redeliveries explained only by a lease write (claim or ack) the server crash undid. */
  crashRedeliveries: number;
  /** The first early or unexplained redeliveries, each with the deliveries, kill and ack times behind it (JSON). */
  suspicious: string[];
  /** ms from the server going down until the first ack after it was back. */
  restartRecoveryMs: number;
  durationMs: number;
  completed: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Builds soak-consumer.ts into one file next to node_modules (its packages stay external). */
async function bundleConsumer(): Promise<string> {
  const dir = join(import.meta.dirname, '../../node_modules/.cache/kst-soak');
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, 'consumer.mjs');
  await build({
    entryPoints: [join(import.meta.dirname, 'soak-consumer.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile,
    logLevel: 'error',
  });
  return outfile;
}

interface Servers {
  config: StorageConfigInput;
  /** Crashes the server, calls `onDown` once it is down, and starts it again after `downMs`. */
  restart(downMs: number, onDown: () => void): Promise<void>;
  stop(): Promise<void>;
}

async function startServers(backend: SoakBackend, leaseCommit: 'async' | 'sync'): Promise<Servers> {
  const queues = { maxAttempts: 1000 };
  if (backend === 'postgresql') {
    const server = await PrivatePostgres.start();
    return {
      config: {
        backend: 'postgresql',
        postgresql: { url: server.url, schema: 'soak', migrate: true, poolSize: 3, leaseCommit },
        queues,
      },
      restart: (downMs, onDown) => server.restart(downMs, onDown),
      stop: () => server.stop(),
    };
  }
  const redis = await PrivateRedis.start({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  const restartRedis = async (downMs: number, onDown: () => void) => {
    await redis.kill('SIGKILL');
    onDown();
    await sleep(downMs);
    await redis.launch();
  };
  if (backend === 'redis') {
    return {
      config: { backend: 'redis', keyPrefix: 'soak:', redis: { url: redis.url }, queues },
      restart: restartRedis,
      stop: () => redis.stop(),
    };
  }
  const schema = `kst_soak_${randomBytes(4).toString('hex')}`;
  const url = testDatabaseUrl();
  return {
    config: {
      backend: 'hybrid',
      keyPrefix: 'soak:',
      redis: { url: redis.url },
      postgresql: { url, schema, migrate: true, poolSize: 3 },
      queues,
    },
    restart: restartRedis,
    async stop() {
      await redis.stop();
      const client = new pg.Client(url);
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

export async function crashSoak(options: SoakOptions): Promise<SoakReport> {
  const messages = options.messages ?? 20_000;
  const consumerCount = options.consumers ?? 8;
  const visibilityMs = (options.visibilitySeconds ?? 5) * 1000;
  const killEveryMs = options.killEveryMs ?? 700;
  const log = options.log ?? (() => {});
  const leaseCommit = options.leaseCommit ?? 'async';
  const queue = `soak-${randomBytes(3).toString('hex')}`;
  const [bundle, servers] = await Promise.all([bundleConsumer(), startServers(options.backend, leaseCommit)]);
  const producer: Storage = createStorage(servers.config);
  const started = performance.now();

  const deliveries: Delivery[] = [];
  const acked = new Set<number>();
  const ackTimes = new Map<string, number[]>(); // `${id}:${pid}` → when each ack was answered
  const ackFailed = new Set<string>(); // `${s}:${pid}`
  const killed = new Map<number, number>(); // pid → when
  let ackFailures = 0;
  let receiveErrors = 0;
  let kills = 0;
  const consumerExits: string[] = [];
  let lastAckAt = 0;
  const children = new Set<ChildProcess>();

  const spawnConsumer = () => {
    const child = spawn(process.execPath, [bundle], {
      env: {
        ...process.env,
        SOAK_STORAGE: JSON.stringify(servers.config),
        SOAK_QUEUE: queue,
        SOAK_VISIBILITY: String(visibilityMs / 1000),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    child.once('exit', (code, signal) => {
      children.delete(child);
      // Only the killer and the end of the run stop a consumer: anything else is the library failing it.
      if (running && !killed.has(child.pid!)) {
        consumerExits.push(`${signal ?? code}: ${stderr.trim()}`);
        log(`consumer ${child.pid} exited by itself (${consumerExits.at(-1)})`);
      }
    });
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: { e: string; id: string; s: number; a: number; t0: number; t1: number; t: number; p: number };
      try {
        line = JSON.parse(text);
      } catch {
        return; // not one of ours
      }
      if (line.e === 'r')
        deliveries.push({ id: line.id, s: line.s, a: line.a, t0: line.t0, t1: line.t1, p: line.p });
      else if (line.e === 'a') {
        acked.add(line.s);
        lastAckAt = line.t;
        const key = `${line.id}:${line.p}`;
        ackTimes.set(key, [...(ackTimes.get(key) ?? []), line.t]);
      } else if (line.e === 'af') {
        ackFailures++;
        ackFailed.add(`${line.s}:${line.p}`);
      } else if (line.e === 'err') receiveErrors++;
    });
    return child;
  };

  let running = true;
  let sentCount = 0;
  let sendFailures = 0;
  let restarted = false;
  let restartRecoveryMs = 0;
  /** When the server was answering again after its crash. */
  let upAt: number | undefined;
  let serverDown = false;
  /** When the last send acknowledged before the crash began: every commit before then survived it. */
  let durableBefore = 0;

  try {
    // Schema migrated, scripts loaded, connections up before the consumers start.
    await producer.queues.stats(queue);
    for (let i = 0; i < consumerCount; i++) spawnConsumer();

    const killer = (async () => {
      while (running) {
        await sleep(killEveryMs * (0.5 + Math.random()));
        if (!running) break;
        const victims = [...children];
        const victim = victims[Math.floor(Math.random() * victims.length)];
        if (!victim?.pid) continue;
        killed.set(victim.pid, Date.now());
        victim.kill('SIGKILL');
        kills++;
        await sleep(100 + Math.random() * 400);
        if (running) spawnConsumer();
      }
    })();

    const restart = async () => {
      restarted = true;
      const downAt = Date.now();
      log(`restarting the server (${options.backend}) after ${sentCount} sends, ${acked.size} acks`);
      await servers.restart(options.serverDownMs ?? 1000, () => {
        serverDown = true;
      });
      const backAt = Date.now();
      upAt = backAt;
      while (running && lastAckAt <= backAt) await sleep(20);
      restartRecoveryMs = lastAckAt - downAt;
      log(`acks again ${restartRecoveryMs} ms after the server went down`);
    };
    let restarting: Promise<void> | undefined;

    let next = 0;
    const sender = async () => {
      for (;;) {
        const s = next++;
        if (s >= messages) return;
        if (!restarted && s >= messages / 2) restarting = restart();
        for (;;) {
          try {
            const begun = Date.now();
            await producer.queues.send(queue, { s }, { dedupId: `s${s}` });
            if (!serverDown) durableBefore = Math.max(durableBefore, begun);
            sentCount++;
            break;
          } catch {
            sendFailures++;
            await sleep(100);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: 4 }, sender));
    log(`sent ${sentCount} in ${Math.round(performance.now() - started)} ms`);
    await restarting;

    /** Messages of the queue still held anywhere (a hybrid: on either backend), and dead ones. */
    const left = async () => {
      const drivers = Object.values(hybridControl(producer)?.drivers ?? {});
      const all =
        drivers.length > 0 ? drivers.map((d) => d.queues.stats(queue)) : [producer.queues.stats(queue)];
      const stats = await Promise.all(all);
      return {
        waiting: stats.reduce((n, x) => n + x.depth + x.delayed + x.inFlight, 0),
        dead: stats.reduce((n, x) => n + x.dead, 0),
      };
    };

    // Done when every message was acked (by its line), or the queue is empty and nothing moves.
    const deadline = performance.now() + (options.timeoutMs ?? 600_000);
    let emptyLooks = 0;
    let completed = false;
    while (performance.now() < deadline) {
      await sleep(500);
      if (acked.size === messages) {
        completed = true;
        break;
      }
      const empty = (await left().catch(() => undefined))?.waiting === 0;
      emptyLooks = empty ? emptyLooks + 1 : 0;
      if (emptyLooks >= 6) {
        completed = true;
        break;
      }
    }
    running = false;
    await killer;
    for (const child of children) child.kill('SIGKILL');
    await sleep(200); // the last lines

    const end = await left();
    const asyncLeases = options.backend === 'postgresql' && leaseCommit === 'async';
    const crash = asyncLeases && upAt !== undefined ? { durableBefore, upAt } : undefined;
    const judged = judge(deliveries, { messages, visibilityMs, killed, ackFailed, ackTimes, crash });
    const lost = Math.max(0, judged.neverDelivered - end.waiting);

    return {
      backend: options.backend,
      ...(options.backend === 'postgresql' ? { leaseCommit } : {}),
      messages,
      consumers: consumerCount,
      kills,
      consumerExits,
      serverRestarts: restarted ? 1 : 0,
      sent: sentCount,
      sendFailures,
      deliveries: deliveries.length,
      delivered: judged.delivered,
      ackRecorded: acked.size,
      ackFailures,
      receiveErrors,
      lost,
      leftInQueue: end.waiting,
      dead: end.dead,
      duplicates: judged.duplicates,
      unexplainedDuplicates: judged.unexplained,
      earlyRedeliveries: judged.early,
      crashRedeliveries: judged.undone,
      suspicious: judged.samples,
      restartRecoveryMs,
      durationMs: Math.round(performance.now() - started),
      completed,
    };
  } finally {
    running = false;
    for (const child of children) child.kill('SIGKILL');
    await producer.close().catch(() => {});
    await servers.stop();
  }
}
