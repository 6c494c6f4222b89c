/**
 * Queue push delivery over the WebSocket end to end, over serverless-offline (`npm start`
 * through the shared harness) on a real Redis under a key prefix of its own: a consumer
 * registers with a `receive` frame and is handed messages as HTTP sends arrive, within its
 * `max`, spread over the waiting connections; ack, nack and extend over the WebSocket and ack
 * over HTTP of a pushed receipt; a delivery offline's management endpoint answers 410 for gives
 * its lease back at once; a closed connection and a `stop` give back what they held; a delayed
 * message is pushed by the scheduled cleanup when due; every bad queue frame gets an error frame
 * and the connection stays open.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { redisBackend } from '../support/backends.js';
import { type Offline, startOffline } from '../support/servers/offline.js';
import { FRAME_TIMEOUT_MS, WsClient } from '../support/ws-client.js';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const KEY_PREFIX = `kst:e2e:push:${randomBytes(4).toString('hex')}:`;
/** Ceiling for a frame to arrive on a shared, noisy machine; never an expectation. */
const CLEANUP_FUNCTION = 'kubently-storage-dev-cleanup';

const unavailable = await redisBackend({ name: 'redis', url: REDIS_URL }).available();
if (unavailable !== undefined && !process.env.CI)
  console.warn(`\n⚠ e2e queue push SKIPPED: ${unavailable}\n`);
const suite = unavailable === undefined || process.env.CI ? describe : describe.skip;
const skipReason = unavailable === undefined || process.env.CI ? '' : ` — SKIPPED: ${unavailable}`;

suite(`queue push delivery over the WebSocket on serverless offline${skipReason}`, {
  timeout: 120_000,
}, () => {
  let offline: Offline;
  let storage: Storage;
  const clients: WsClient[] = [];

  beforeAll(async () => {
    offline = await startOffline({ env: { STORAGE_BACKEND: 'redis', REDIS_URL, KEY_PREFIX } });
    storage = createStorage({ backend: 'redis', keyPrefix: KEY_PREFIX, redis: { url: REDIS_URL } });
    await warmUp();
  }, 400_000);

  afterAll(async () => {
    for (const client of clients) client.socket.terminate();
    await offline?.stop();
    await storage?.close();
    const redis = new Redis(REDIS_URL);
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${KEY_PREFIX}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.unlink(...keys);
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  }, 60_000);

  /** Each function's first invocation loads its bundle: invoked once first, retried until it answers. */
  async function warmUp(): Promise<void> {
    const queue = 'e2e-push-warm-up';
    let tries = 0;
    await untilOk(async () => {
      if (tries++ === 3)
        console.warn(`warm-up still failing; offline said:\n${offline.output().slice(-4000)}`);
      const client = await WsClient.open(`${offline.wsUrl}?token=${encodeURIComponent(offline.adminToken)}`);
      try {
        client.send({ action: 'receive', queue });
        await client.next((frame) => frame.type === 'receiving');
        const sent = await api('POST', `/queues/${queue}/messages`, { payload: 'warm' });
        if (sent.status !== 201) throw new Error(`send answered ${sent.status}`);
        const delivery = await client.next((frame) => frame.type === 'delivery');
        client.send({ action: 'ack', queue, id: delivery.id, receipt: delivery.receipt });
        await client.next((frame) => frame.type === 'acked');
      } finally {
        client.socket.terminate();
      }
    });
  }

  async function api(method: string, path: string, body?: unknown, token = offline.adminToken) {
    const response = await fetch(`${offline.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : undefined };
  }

  async function token(scopes: string[], resources = ['e2e-*']): Promise<string> {
    const response = await api('POST', '/tokens', { identity: 'e2e-push', scopes, resources });
    expect(response.status, JSON.stringify(response.json)).toBe(201);
    return response.json.token;
  }

  async function connect(accessToken?: string): Promise<WsClient> {
    const client = await WsClient.open(
      `${offline.wsUrl}?token=${encodeURIComponent(accessToken ?? (await token(['queues:receive'])))}`,
    );
    clients.push(client);
    return client;
  }

  async function receiving(client: WsClient, queue: string, options: Record<string, unknown> = {}) {
    client.send({ action: 'receive', queue, ...options });
    expect(await client.next((frame) => frame.type !== 'delivery')).toEqual({ type: 'receiving', queue });
  }

  async function send(queue: string, payload: unknown): Promise<string> {
    const sent = await api('POST', `/queues/${encodeURIComponent(queue)}/messages`, { payload });
    expect(sent.status, JSON.stringify(sent.json)).toBe(201);
    return sent.json.id;
  }

  const stats = async (queue: string) => (await api('GET', `/queues/${encodeURIComponent(queue)}`)).json;
  const newQueue = () => `e2e-push-${randomUUID()}`;

  it('a send is delivered at once to a waiting consumer with an HTTP receive lease; ack over the WebSocket', async () => {
    const queue = newQueue();
    const client = await connect();
    await receiving(client, queue);
    const id = await send(queue, { cmd: 'kubectl get pods' });
    const delivery = await client.next();
    expect(delivery).toMatchObject({
      type: 'delivery',
      queue,
      id,
      payload: { cmd: 'kubectl get pods' },
      attempts: 1,
    });
    expect(typeof delivery.receipt).toBe('string');
    expect(Number.isNaN(Date.parse(delivery.enqueuedAt))).toBe(false);
    expect(await stats(queue)).toMatchObject({ depth: 0, inFlight: 1 });
    client.send({ action: 'ack', queue, id, receipt: delivery.receipt });
    expect(await client.next()).toEqual({ type: 'acked', queue, id });
    expect(await stats(queue)).toMatchObject({ depth: 0, inFlight: 0 });
    expect((await storage.consumers.list(queue))[0]!.inFlight).toEqual([]);
  });

  it('the backlog is delivered at registration, at most max at a time; an ack pulls the next', async () => {
    const queue = newQueue();
    const ids = [await send(queue, 1), await send(queue, 2), await send(queue, 3)];
    const client = await connect();
    await receiving(client, queue, { max: 2, visibilityTimeout: 60 });
    const first = await client.next();
    const second = await client.next();
    expect([first.id, second.id]).toEqual(ids.slice(0, 2));
    // The third stays in the queue: the consumer holds its max.
    expect(await stats(queue)).toMatchObject({ depth: 1, inFlight: 2 });
    expect((await storage.consumers.list(queue))[0]).toMatchObject({ max: 2, visibilityTimeout: 60 });
    client.send({ action: 'ack', queue, id: first.id, receipt: first.receipt });
    expect(await client.next()).toEqual({ type: 'acked', queue, id: first.id });
    expect(await client.next()).toMatchObject({ type: 'delivery', id: ids[2], payload: 3 });
    expect(await stats(queue)).toMatchObject({ depth: 0, inFlight: 2 });
  });

  it('deliveries are spread over the waiting connections', async () => {
    const queue = newQueue();
    const [a, b] = [await connect(), await connect()];
    await receiving(a, queue, { max: 10 });
    await receiving(b, queue, { max: 10 });
    for (let i = 0; i < 4; i++) await send(queue, i);
    await vi.waitFor(() => expect(a.queued().length + b.queued().length).toBe(4), {
      timeout: FRAME_TIMEOUT_MS,
    });
    expect(a.queued()).toHaveLength(2);
    expect(b.queued()).toHaveLength(2);
  });

  it('a delivery the management endpoint answers 410 for gives its lease back at once, to another consumer', async () => {
    const queue = newQueue();
    const live = await connect();
    await receiving(live, queue);
    // A consumer whose connection API Gateway no longer knows. Never served yet, it comes before
    // the live one (served once, by the empty push at its registration).
    const gone = `gone-${randomUUID()}`;
    await storage.consumers.register(gone, queue);
    const id = await send(queue, 'for whoever is there');
    // Leased to the gone one first (attempt 1), given back, then delivered: attempt 2.
    expect(await live.next()).toMatchObject({ type: 'delivery', id, attempts: 2 });
    expect((await storage.consumers.list(queue)).map((c) => c.connectionId)).not.toContain(gone);
  });

  it('a closed connection gives back what it held; a reconnected consumer gets it', async () => {
    const queue = newQueue();
    const accessToken = await token(['queues:receive']);
    const first = await connect(accessToken);
    await receiving(first, queue, { visibilityTimeout: 600 });
    const id = await send(queue, 'survives a reconnect');
    expect(await first.next()).toMatchObject({ type: 'delivery', id, attempts: 1 });
    first.socket.terminate();
    // $disconnect gave the lease back long before its 600 s end.
    await vi.waitFor(async () => expect(await stats(queue)).toMatchObject({ depth: 1, inFlight: 0 }), {
      timeout: FRAME_TIMEOUT_MS,
    });
    const again = await connect(accessToken);
    await receiving(again, queue);
    expect(await again.next()).toMatchObject({ type: 'delivery', id, attempts: 2 });
  });

  it('stop answers stopped, gives back unacknowledged deliveries and ends the consumer', async () => {
    const queue = newQueue();
    const client = await connect();
    await receiving(client, queue, { max: 2, visibilityTimeout: 600 });
    const id = await send(queue, 'given back');
    expect(await client.next()).toMatchObject({ type: 'delivery', id });
    client.send({ action: 'stop', queue });
    expect(await client.next()).toEqual({ type: 'stopped', queue });
    await vi.waitFor(async () => expect(await stats(queue)).toMatchObject({ depth: 1, inFlight: 0 }), {
      timeout: FRAME_TIMEOUT_MS,
    });
    expect(await storage.consumers.list(queue)).toEqual([]);
    await send(queue, 'not for a stopped consumer');
    expect(await stats(queue)).toMatchObject({ depth: 2, inFlight: 0 });
    expect(client.queued()).toEqual([]);
  });

  it('nack and extend over the WebSocket; a stale receipt is refused with a conflict frame', async () => {
    const queue = newQueue();
    const client = await connect();
    await receiving(client, queue);
    const id = await send(queue, 'retry me');
    const first = await client.next();
    client.send({ action: 'extend', queue, id, receipt: first.receipt, visibilityTimeout: 120 });
    expect(await client.next()).toEqual({ type: 'extended', queue, id });
    client.send({ action: 'nack', queue, id, receipt: first.receipt });
    expect(await client.next()).toEqual({ type: 'nacked', queue, id });
    // Visible again and the slot free: delivered again at once.
    const second = await client.next();
    expect(second).toMatchObject({ type: 'delivery', id, attempts: 2 });
    client.send({ action: 'ack', queue, id, receipt: first.receipt });
    // The error names the request it answers, as `acked` would.
    expect(await client.next()).toEqual({
      type: 'error',
      code: 'conflict',
      message: expect.any(String),
      queue,
      id,
    });
    client.send({ action: 'nack', queue, id, receipt: second.receipt, delay: 600 });
    expect(await client.next()).toEqual({ type: 'nacked', queue, id });
    expect(await stats(queue)).toMatchObject({ depth: 1, inFlight: 0 });
  });

  it('an HTTP ack of a pushed receipt frees the slot and pulls the next message', async () => {
    const queue = newQueue();
    const client = await connect();
    await receiving(client, queue);
    const first = await send(queue, 'a');
    const second = await send(queue, 'b');
    const delivery = await client.next();
    expect(delivery).toMatchObject({ id: first });
    const acked = await api('POST', `/queues/${queue}/messages/${first}/ack`, { receipt: delivery.receipt });
    expect(acked.status).toBe(204);
    expect(await client.next()).toMatchObject({ type: 'delivery', id: second });
  });

  it('a delayed message is pushed when due by the scheduled cleanup', async () => {
    const queue = newQueue();
    const client = await connect();
    await receiving(client, queue);
    const sent = await api('POST', `/queues/${queue}/messages`, { payload: 'later', delay: 1 });
    expect(sent.status).toBe(201);
    // Due now, and nothing else happens on the queue: only the schedule can bring it.
    await vi.waitFor(async () => expect((await storage.queues.stats(queue)).delayed).toBe(0), {
      timeout: FRAME_TIMEOUT_MS,
    });
    expect(client.queued()).toEqual([]);
    const lambda = new LambdaClient({
      endpoint: offline.lambdaEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'e2e', secretAccessKey: 'e2e' },
    });
    try {
      const result = await lambda.send(
        new InvokeCommand({ FunctionName: CLEANUP_FUNCTION, Payload: Buffer.from(JSON.stringify({})) }),
      );
      expect(result.FunctionError).toBeUndefined();
    } finally {
      lambda.destroy();
    }
    expect(await client.next()).toMatchObject({ type: 'delivery', id: sent.json.id, payload: 'later' });
  });

  it('every bad queue frame gets a clear error frame and the connection stays open', async () => {
    const client = await connect(await token(['queues:receive', 'events:subscribe']));
    // An error repeats the frame's queue, and an ack's, nack's or extend's id, when they are valid.
    const cases: [unknown, string, RegExp, { queue?: string; id?: string }][] = [
      [{ action: 'receive' }, 'bad_request', /queue/, {}],
      [{ action: 'receive', queue: '' }, 'bad_request', /queue/, {}],
      [{ action: 'receive', queue: 7 }, 'bad_request', /queue/, {}],
      [{ action: 'receive', queue: 'e2e-q', max: 0 }, 'bad_request', /max/, { queue: 'e2e-q' }],
      [{ action: 'receive', queue: 'e2e-q', max: 101 }, 'bad_request', /max/, { queue: 'e2e-q' }],
      [{ action: 'receive', queue: 'e2e-q', max: 1.5 }, 'bad_request', /max/, { queue: 'e2e-q' }],
      [{ action: 'receive', queue: 'e2e-q', max: '2' }, 'bad_request', /max/, { queue: 'e2e-q' }],
      [
        { action: 'receive', queue: 'e2e-q', visibilityTimeout: 0 },
        'bad_request',
        /visibilityTimeout/,
        { queue: 'e2e-q' },
      ],
      [
        { action: 'receive', queue: 'e2e-q', visibilityTimeout: 43_201 },
        'bad_request',
        /visibilityTimeout/,
        { queue: 'e2e-q' },
      ],
      [
        { action: 'receive', queue: 'e2e-q', wait: 20 },
        'bad_request',
        /unknown field "wait"/,
        { queue: 'e2e-q' },
      ],
      [
        { action: 'receive', queue: 'team-b-jobs' },
        'forbidden',
        /queues:receive|team-b-jobs/,
        { queue: 'team-b-jobs' },
      ],
      [{ action: 'ack', queue: 'e2e-q', id: '1' }, 'bad_request', /receipt/, { queue: 'e2e-q', id: '1' }],
      [{ action: 'ack', queue: 'e2e-q', receipt: 'r' }, 'bad_request', /id/, { queue: 'e2e-q' }],
      [
        { action: 'ack', queue: 'e2e-q', id: 'nope', receipt: 'r' },
        'not_found',
        /./,
        { queue: 'e2e-q', id: 'nope' },
      ],
      [
        { action: 'nack', queue: 'e2e-q', id: '1', receipt: 'r', delay: -1 },
        'bad_request',
        /delay/,
        { queue: 'e2e-q', id: '1' },
      ],
      [
        { action: 'extend', queue: 'e2e-q', id: '1', receipt: 'r' },
        'bad_request',
        /visibilityTimeout/,
        { queue: 'e2e-q', id: '1' },
      ],
      [{ action: 'stop' }, 'bad_request', /queue/, {}],
      [{ action: 'stop', queue: 'e2e-q', id: '1' }, 'bad_request', /unknown field "id"/, { queue: 'e2e-q' }],
      [{ action: 'Receive', queue: 'e2e-q' }, 'bad_request', /action: expected/, {}],
    ];
    for (const [frame, code, message, echo] of cases) {
      client.send(frame);
      const answer = await client.next();
      expect(answer, JSON.stringify(frame)).toEqual({
        type: 'error',
        code,
        message: expect.any(String),
        ...echo,
      });
      expect(answer.message, JSON.stringify(frame)).toMatch(message);
    }
    client.send({ action: 'ping' });
    expect(await client.next()).toEqual({ type: 'pong' });
  });
});

/** Calls `attempt` until it resolves (a cold function may time out once), up to a ceiling. */
async function untilOk(attempt: () => Promise<void>, deadlineMs = 300_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      await attempt();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      console.warn(`warm-up: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}
