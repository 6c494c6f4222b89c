/**
 * `npm run bench:delivery [-- --executors 20] [--window 60] [--commands 10] [--out DIR]`
 *
 * What idle executors cost, waiting for commands on serverless-offline (`npm start`, embedded
 * backend): HTTP long polls (`POST /queues/{name}/receive` with `wait: 20`, back to back) versus
 * WebSocket push (connect, one `receive` frame, then idle but for a `ping` every 5 minutes), and
 * the delivery latency of a command in each (send → the executor has it).
 *
 * Simulated time: every executor runs for real for `--window` seconds; the function-seconds and
 * invocations of that window are scaled to an hour (× 3600 / the window's length). An idle long
 * poll runs its function for the whole wait, so the scaling is linear. A push connection costs
 * function time only for its invocations: `$connect` (with its authorizer) and `$default` for
 * the `receive` frame, counted once per hour (API Gateway keeps a connection up to 2 h, so this
 * is an upper bound), plus 12 pings an hour, each timed here once per executor. Function time is
 * measured at the client (request sent → answer), an upper bound of the invocation's duration.
 * Writes `<out>/delivery-cost.json`; `npm run bench:docs` renders it into docs/benchmarks.md.
 */
import { randomBytes } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { startOffline } from '../test/support/servers/offline.js';
import { type DeliveryCostResults, PING_INTERVAL_SECONDS, writeDeliveryCost } from './lib/delivery-cost.js';
import { quantile } from './lib/measure.js';

function option(flag: string, fallback: string): string {
  const at = process.argv.indexOf(flag);
  return at >= 0 && process.argv[at + 1] ? (process.argv[at + 1] as string) : fallback;
}
function positive(flag: string, fallback: string): number {
  const value = Number(option(flag, fallback));
  if (!Number.isInteger(value) || value < 1) throw new Error(`${flag}: a positive integer`);
  return value;
}

const executors = positive('--executors', '20');
const windowSeconds = positive('--window', '60');
const commands = positive('--commands', '10');
const out = resolve(option('--out', join(import.meta.dirname, 'results')));
const LONG_POLL_WAIT = 20;
const run = randomBytes(4).toString('hex');
const started = Date.now();

process.stderr.write('starting serverless-offline …\n');
const offline = await startOffline();

async function api(method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${offline.baseUrl}${path}`, {
    signal: AbortSignal.timeout(60_000),
    method,
    headers: { authorization: `Bearer ${offline.adminToken}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Spreads the commands over the window, each at a random moment of its slot. */
const commandTimes = (windowMs: number) =>
  Array.from({ length: commands }, (_, i) => ((i + 0.2 + Math.random() * 0.6) * windowMs) / commands);

/**
 * The first invocation of each function loads its bundle, and serverless-offline starts a worker
 * per concurrent invocation: not an idle executor's cost. As many receives at once as there are
 * executors, until all answer.
 */
async function warmUp(): Promise<void> {
  await api('POST', `/queues/bench-${run}-warm/messages`, { payload: 0 });
  for (let round = 0; round < 10; round++) {
    const answers = await Promise.all(
      Array.from({ length: executors }, () =>
        api('POST', `/queues/bench-${run}-warm-idle/receive`, { wait: 1 }).catch(() => undefined),
      ),
    );
    if (answers.every((answer) => Array.isArray((answer as { messages?: unknown })?.messages))) return;
  }
  throw new Error('the queues function did not answer every warm-up receive');
}

// ---------------------------------------------------------------------------------------------
// HTTP long poll

async function longPoll() {
  const windowMs = windowSeconds * 1000;
  const end = Date.now() + windowMs;
  const durations: number[] = [];
  const latencies: number[] = [];
  /** Receives that did not answer with messages (a Lambda timeout on a loaded machine). */
  const failures: string[] = [];
  const sentAt = new Map<string, number>();
  const loops = Array.from({ length: executors }, async (_, n) => {
    const queue = `bench-${run}-poll-${n}`;
    const first = Date.now();
    let last = first;
    while (Date.now() < end) {
      const before = Date.now();
      const answer = (await api('POST', `/queues/${queue}/receive`, { wait: LONG_POLL_WAIT })) as {
        messages?: { id: string; receipt: string; payload: string }[];
      };
      last = Date.now();
      // A receive that timed out still held its function: its time counts.
      durations.push(last - before);
      const messages = answer?.messages;
      if (!Array.isArray(messages)) {
        failures.push(JSON.stringify(answer).slice(0, 200));
        continue;
      }
      for (const message of messages) {
        latencies.push(last - sentAt.get(message.payload)!);
        await api('POST', `/queues/${queue}/messages/${message.id}/ack`, { receipt: message.receipt });
      }
    }
    return (last - first) / 1000;
  });
  const sends = commandTimes(windowMs).map(async (at, i) => {
    await sleep(at);
    sentAt.set(`command-${i}`, Date.now());
    await api('POST', `/queues/bench-${run}-poll-0/messages`, { payload: `command-${i}` });
  });
  const [walls] = await Promise.all([Promise.all(loops), Promise.all(sends)]);
  const observedSeconds = walls.reduce((a, b) => a + b, 0);
  const functionSeconds = durations.reduce((a, b) => a + b, 0) / 1000;
  return {
    observedExecutorSeconds: observedSeconds,
    requests: durations.length,
    failedRequests: failures.length,
    failures: [...new Set(failures)].slice(0, 3),
    functionSeconds,
    perExecutorHour: {
      invocations: (durations.length / observedSeconds) * 3600,
      functionSeconds: (functionSeconds / observedSeconds) * 3600,
    },
    latencyMs: summary(latencies),
  };
}

// ---------------------------------------------------------------------------------------------
// WebSocket push

interface Socket {
  socket: WebSocket;
  frames: { type: string; [field: string]: unknown }[];
  next(type: string): Promise<{ type: string; [field: string]: unknown }>;
}

/** Opens a socket with `token` (each executor has its own: a token holds 10 connections by default). */
async function open(token = offline.adminToken): Promise<{ connection: Socket; connectMs: number }> {
  const before = Date.now();
  const socket = new WebSocket(`${offline.wsUrl}?token=${encodeURIComponent(token)}`);
  const frames: Socket['frames'] = [];
  const waiters: { type: string; resolve: (frame: Socket['frames'][number]) => void }[] = [];
  socket.onmessage = ({ data }) => {
    const frame = JSON.parse(String(data)) as Socket['frames'][number];
    const at = waiters.findIndex((w) => w.type === frame.type || frame.type === 'error');
    if (at >= 0) waiters.splice(at, 1)[0]!.resolve(frame);
    else frames.push(frame);
  };
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error('WebSocket connection refused'));
  });
  const connectMs = Date.now() - before;
  const next = (type: string) =>
    new Promise<Socket['frames'][number]>((resolve) => {
      const at = frames.findIndex((f) => f.type === type || f.type === 'error');
      if (at >= 0) resolve(frames.splice(at, 1)[0]!);
      else waiters.push({ type, resolve });
    });
  return { connection: { socket, frames, next }, connectMs };
}

async function push() {
  const probe = await open();
  probe.connection.socket.send(JSON.stringify({ action: 'receive', queue: `bench-${run}-probe` }));
  const answer = await Promise.race([
    probe.connection.next('receiving'),
    sleep(10_000).then(() => undefined),
  ]);
  probe.connection.socket.close();
  if (answer?.type !== 'receiving') {
    return {
      served: false as const,
      reason: answer ? String(answer.message) : 'no answer to receive in 10 s',
    };
  }

  const windowMs = windowSeconds * 1000;
  const connectMs: number[] = [];
  const receiveMs: number[] = [];
  const pingMs: number[] = [];
  const connections: Socket[] = [];
  for (let n = 0; n < executors; n++) {
    const { token } = (await api('POST', '/tokens', {
      identity: `bench-executor-${n}`,
      scopes: ['queues:receive'],
      resources: [`bench-${run}-push-${n}`],
    })) as { token: string };
    const { connection, connectMs: took } = await open(token);
    connectMs.push(took);
    const before = Date.now();
    connection.socket.send(JSON.stringify({ action: 'receive', queue: `bench-${run}-push-${n}` }));
    const answer = await connection.next('receiving');
    if (answer.type !== 'receiving') throw new Error(`receive refused: ${JSON.stringify(answer)}`);
    receiveMs.push(Date.now() - before);
    connections.push(connection);
  }
  const latencies: number[] = [];
  const listener = connections[0]!;
  await Promise.all(
    commandTimes(windowMs).map(async (at, i) => {
      await sleep(at);
      const sent = Date.now();
      await api('POST', `/queues/bench-${run}-push-0/messages`, { payload: `command-${i}` });
      // Deliveries come one at a time (max 1): wait for this one, ack it.
      const delivery = await listener.next('delivery');
      latencies.push(Date.now() - sent);
      listener.socket.send(
        JSON.stringify({ action: 'ack', queue: delivery.queue, id: delivery.id, receipt: delivery.receipt }),
      );
      await listener.next('acked');
    }),
  );
  for (const connection of connections) {
    const before = Date.now();
    connection.socket.send(JSON.stringify({ action: 'ping' }));
    await connection.next('pong');
    pingMs.push(Date.now() - before);
  }
  for (const connection of connections) connection.socket.close();
  const pingsPerHour = 3600 / PING_INTERVAL_SECONDS;
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length / 1000;
  return {
    served: true as const,
    connectMs: summary(connectMs),
    receiveMs: summary(receiveMs),
    pingMs: summary(pingMs),
    perExecutorHour: {
      // authorizer + $connect, $default (receive), $default per ping
      invocations: 2 + 1 + pingsPerHour,
      functionSeconds: mean(connectMs) + mean(receiveMs) + pingsPerHour * mean(pingMs),
      connectionMinutes: 60,
      // receive, receiving, then a ping and its pong each time
      messages: 2 + 2 * pingsPerHour,
    },
    latencyMs: summary(latencies),
  };
}

function summary(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

try {
  await warmUp();
  process.stderr.write(`long poll: ${executors} executors for ${windowSeconds} s …\n`);
  const poll = await longPoll();
  process.stderr.write(`push: ${executors} executors …\n`);
  const pushed = await push();
  const results: DeliveryCostResults = {
    meta: {
      date: new Date(started).toISOString(),
      durationSeconds: Math.round((Date.now() - started) / 1000),
      executors,
      windowSeconds,
      commands,
      longPollWait: LONG_POLL_WAIT,
      memoryMB: 512,
      target: 'serverless-offline (npm start, embedded backend)',
      machine: {
        cpu: cpus()[0]?.model ?? 'unknown',
        cores: cpus().length,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        load: loadavg().map((l) => Math.round(l * 100) / 100),
      },
    },
    poll,
    push: pushed,
  };
  const path = writeDeliveryCost(out, results);
  console.log(`wrote ${path}`);
  console.log(JSON.stringify(results, null, 2));
} finally {
  await offline.stop();
}
