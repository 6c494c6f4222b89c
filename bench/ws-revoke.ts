/**
 * `npx tsx bench/ws-revoke.ts [--rounds 20] [--backend embedded|redis]`
 *
 * How long an open WebSocket outlives the revocation of its token, on serverless-offline
 * (`npm start` on free ports, through the e2e harness): each round issues a token, opens a
 * socket with it and subscribes, then `DELETE /tokens/{id}` and waits for the socket's close.
 * Prints, per round and as p50 / p95 / max over the rounds:
 *
 * - `close after answer`: from the DELETE's response to the socket's close (the target is
 *   ≤ 1000 ms; negative when the socket closed before the response arrived, as the route
 *   closes the connections before it answers);
 * - `close after request`: from sending the DELETE to the socket's close.
 *
 * `--backend embedded` (default) is what `npm start` runs (PGlite); `redis` uses REDIS_URL
 * (default redis://127.0.0.1:6379) under a key prefix of its own, removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { startOffline } from '../test/support/servers/offline.js';
import { quantile } from './lib/measure.js';

const TARGET_MS = 1000;

function option(flag: string, fallback: string): string {
  const at = process.argv.indexOf(flag);
  return at >= 0 && process.argv[at + 1] ? (process.argv[at + 1] as string) : fallback;
}

const rounds = Number(option('--rounds', '20'));
const backend = option('--backend', 'embedded');
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds: a positive integer');
if (backend !== 'embedded' && backend !== 'redis') throw new Error('--backend: embedded or redis');

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const keyPrefix = `kst:bench:ws-revoke:${randomBytes(4).toString('hex')}:`;

process.stderr.write(`starting serverless-offline (${backend}) …\n`);
const offline = await startOffline({
  env: backend === 'redis' ? { STORAGE_BACKEND: 'redis', REDIS_URL, KEY_PREFIX: keyPrefix } : {},
});

interface Answer {
  status: number;
  json: { id?: string; token?: string } | undefined;
}

async function api(method: string, path: string, body?: unknown): Promise<Answer> {
  const response = await fetch(`${offline.baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${offline.adminToken}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined };
}

/** Opens a socket with `token` and subscribes; answers it with a promise of its close time. */
async function subscribed(token: string): Promise<{ socket: WebSocket; closedAt: Promise<number> }> {
  const socket = new WebSocket(`${offline.wsUrl}?token=${encodeURIComponent(token)}`);
  const closedAt = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('unexpected-response', (_request, response) =>
      reject(new Error(`connect refused: HTTP ${response.statusCode}`)),
    );
    socket.once('error', reject);
  });
  const subscribedFrame = new Promise<void>((resolve) =>
    socket.on('message', (data) => {
      if (JSON.parse(String(data)).type === 'subscribed') resolve();
    }),
  );
  socket.send(JSON.stringify({ action: 'subscribe', channel: 'bench-revoke' }));
  await subscribedFrame;
  return { socket, closedAt };
}

/** One round: [close after answer, close after request] in ms. */
async function round(): Promise<[number, number]> {
  const issued = await api('POST', '/tokens', { identity: 'bench-revoke', scopes: ['events:subscribe'] });
  if (issued.status !== 201) throw new Error(`POST /tokens answered ${issued.status}`);
  const { socket, closedAt } = await subscribed(issued.json!.token!);
  const sent = performance.now();
  const revoked = await api('DELETE', `/tokens/${issued.json!.id}`);
  const answered = performance.now();
  if (revoked.status !== 204) throw new Error(`DELETE /tokens answered ${revoked.status}`);
  const timeout = setTimeout(() => socket.terminate(), 30_000);
  const closed = await closedAt;
  clearTimeout(timeout);
  return [closed - answered, closed - sent];
}

const afterAnswer: number[] = [];
const afterRequest: number[] = [];
try {
  // The first invocation of each function loads its bundle: not measured.
  await round();
  for (let i = 0; i < rounds; i++) {
    const [answer, request] = await round();
    afterAnswer.push(answer);
    afterRequest.push(request);
    process.stderr.write(
      `round ${i + 1}: ${answer.toFixed(1)} ms after answer, ${request.toFixed(1)} ms after request\n`,
    );
  }
} finally {
  await offline.stop();
  if (backend === 'redis') {
    const redis = new Redis(REDIS_URL);
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.unlink(...keys);
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  }
}

const summary = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const f = (q: number) => quantile(sorted, q).toFixed(1);
  return `p50 ${f(0.5)} ms, p95 ${f(0.95)} ms, max ${sorted.at(-1)?.toFixed(1)} ms`;
};
const worst = Math.max(...afterAnswer);
console.log(`WebSocket revoke → close on serverless-offline (${backend}), ${rounds} rounds`);
console.log(`  close after DELETE answered: ${summary(afterAnswer)}`);
console.log(`  close after DELETE sent:     ${summary(afterRequest)}`);
console.log(
  `  target ≤ ${TARGET_MS} ms after the answer: ${worst <= TARGET_MS ? 'met' : 'missed'} (worst ${worst.toFixed(1)} ms)`,
);
