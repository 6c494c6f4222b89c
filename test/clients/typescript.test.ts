/**
 * The TypeScript client (clients/typescript) against the service as `npm start` serves it (one
 * start for the file), plus its retries against a tiny local HTTP server that answers 503/429.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { agent } from '../../clients/typescript/examples/agent.js';
import { executor } from '../../clients/typescript/examples/executor.js';
import {
  type ChannelEvent,
  type Delivery,
  FrameError,
  runExecutor,
  StorageClient,
  StorageError,
  type WebSocketLike,
} from '../../clients/typescript/src/index.js';
import { type Offline, startOffline } from '../support/servers/offline.js';
import { warmUp } from './support.js';

describe('TypeScript client against npm start', { timeout: 120_000 }, () => {
  let offline: Offline;
  let client: StorageClient;
  const run = randomUUID().slice(0, 8);

  beforeAll(async () => {
    offline = await startOffline();
    client = new StorageClient({ baseUrl: offline.baseUrl, wsUrl: offline.wsUrl, token: offline.adminToken });
    await warmUp(offline);
  }, 400_000);

  afterAll(async () => {
    await offline?.stop();
  }, 60_000);

  it('kv: set, get, incr, expire, delete', async () => {
    const key = `ts-${run}/a`;
    expect(await client.kv.set(key, { n: 1 })).toEqual({ key, expiresAt: null });
    expect(await client.kv.get(key)).toMatchObject({ key, value: { n: 1 } });
    expect((await client.kv.expire(key, 60)).expiresAt).toEqual(expect.any(String));
    await client.kv.delete(key);
    expect(await client.kv.incr(`ts-${run}-counter`, 5)).toEqual({ key: `ts-${run}-counter`, value: 5 });
  });

  it('errors carry the status, code and message of the answer', async () => {
    const missing = await client.kv.get(`ts-${run}-missing`).catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(StorageError);
    expect(missing).toMatchObject({ status: 404, code: 'not_found', message: expect.stringContaining('') });
    await client.kv.set(`ts-${run}-nx`, 1);
    await expect(client.kv.set(`ts-${run}-nx`, 2, { nx: true })).rejects.toMatchObject({
      status: 409,
      code: 'conflict',
    });
    await expect(client.kv.set(`ts-${run}-ttl`, 1, { ttl: -1 })).rejects.toMatchObject({
      status: 400,
      code: 'bad_request',
      message: expect.stringContaining('ttl'),
    });
    const stranger = new StorageClient({ baseUrl: offline.baseUrl, token: 'kbs_not-a-token' });
    await expect(stranger.kv.get('a')).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
  });

  it('sessions: create, get, keepalive, find, end', async () => {
    const clusterId = `ts-${run}-cluster`;
    const session = await client.sessions.create({ clusterId, correlationId: `corr-${run}`, data: { a: 1 } });
    expect(session).toMatchObject({ clusterId, correlationId: `corr-${run}`, data: { a: 1 }, userId: null });
    expect(await client.sessions.get(session.sessionId)).toMatchObject({ sessionId: session.sessionId });
    expect((await client.sessions.keepAlive(session.sessionId, 600)).expiresAt > session.expiresAt).toBe(
      true,
    );
    expect((await client.sessions.find({ clusterId })).map((s) => s.sessionId)).toEqual([session.sessionId]);
    expect(await client.sessions.isClusterActive(clusterId)).toBe(true);
    await client.sessions.end(session.sessionId);
    await expect(client.sessions.get(session.sessionId)).rejects.toMatchObject({ code: 'not_found' });
    expect(await client.sessions.isClusterActive(clusterId)).toBe(false);
  });

  it('queues: send, receive, nack, receive again, ack; a repeated dedupId enqueues once', async () => {
    const queue = `ts-${run}-q`;
    const first = await client.queues.send(queue, { job: 1 });
    const second = await client.queues.send(queue, { job: 2 });
    expect(first.id).not.toBe(second.id); // each send has its own generated dedupId
    expect(await client.queues.send(queue, { job: 1 }, { dedupId: 'fixed' })).toEqual(
      await client.queues.send(queue, { job: 1 }, { dedupId: 'fixed' }),
    );
    const [message] = await client.queues.receive(queue, { wait: 5 });
    expect(message).toMatchObject({ id: first.id, payload: { job: 1 }, attempts: 1 });
    await client.queues.nack(queue, message!, 0);
    const [again] = await client.queues.receive(queue, { wait: 5 });
    expect(again).toMatchObject({ id: first.id, attempts: 2 });
    // The first lease's receipt is stale now that the message was delivered again.
    await expect(client.queues.ack(queue, message!)).rejects.toMatchObject({ status: 409, code: 'conflict' });
    await client.queues.ack(queue, again!);
    expect(await client.queues.stats(queue)).toMatchObject({ depth: 2, inFlight: 0 });
  });

  it('subscribe: a dropped connection resumes after the last id, no gap and no repeat', async () => {
    const channel = `ts-${run}-events`;
    const before = await client.events.publish(channel, 'before');
    const sockets: WebSocket[] = [];
    let releaseReconnect!: () => void;
    const reconnectGate = new Promise<void>((resolve) => {
      releaseReconnect = resolve;
    });
    const subscriber = new StorageClient({
      baseUrl: offline.baseUrl,
      wsUrl: offline.wsUrl,
      token: offline.adminToken,
      // Each frame is delivered twice (a relay that Lambda retries repeats frames), and the
      // second connection waits until the test has published during the gap.
      webSocket: async (url) => {
        if (sockets.length > 0) await reconnectGate;
        const socket = new WebSocket(url);
        sockets.push(socket);
        return doubled(socket as unknown as WebSocketLike);
      },
      retry: { attempts: 1 },
    });
    const subscription = subscriber.subscribe(channel, {
      after: before.id,
      reconnectDelayMs: { min: 10, max: 50 },
    });
    const received: ChannelEvent[] = [];
    const iterator = subscription[Symbol.asyncIterator]();
    const next = async () => {
      const result = await iterator.next();
      if (result.done) throw new Error('subscription ended');
      received.push(result.value);
    };
    const published: string[] = [];
    const publish = async (message: string) =>
      published.push((await client.events.publish(channel, message)).id);

    await subscription.ready;
    for (const n of [1, 2]) await publish(`live-${n}`);
    for (let i = 0; i < 2; i++) await next();

    sockets[0]!.terminate();
    for (const n of [1, 2, 3]) await publish(`gap-${n}`);
    releaseReconnect();
    for (let i = 0; i < 3; i++) await next();
    await expect.poll(() => subscription.connections).toBe(2);
    for (const n of [1, 2]) await publish(`after-${n}`);
    for (let i = 0; i < 2; i++) await next();
    subscription.close();

    expect(received.map((event) => event.id)).toEqual(published);
    expect(received.map((event) => event.message)).toEqual([
      'live-1',
      'live-2',
      'gap-1',
      'gap-2',
      'gap-3',
      'after-1',
      'after-2',
    ]);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it('subscribe: a forbidden channel ends the iteration with the error frame', async () => {
    const { token } = await client.tokens.issue({
      identity: `ts-${run}`,
      scopes: ['events:subscribe'],
      resources: ['allowed-*'],
    });
    const limited = new StorageClient({ baseUrl: offline.baseUrl, wsUrl: offline.wsUrl, token });
    const subscription = limited.subscribe(`ts-${run}-secret`);
    await expect(subscription.ready).rejects.toMatchObject({ name: 'FrameError', code: 'forbidden' });
  });

  it('runExecutor: acks what succeeds, nacks what throws (delivered again), stops on abort', async () => {
    const queue = `ts-${run}-work`;
    await client.queues.send(queue, 'ok');
    await client.queues.send(queue, 'fails-once');
    const handled: [unknown, number][] = [];
    const failures: unknown[] = [];
    const stop = new AbortController();
    // Counts receives in flight and records how each ended, to see the last long poll
    // abandoned at the abort rather than waited out.
    let receiving = 0;
    const receiveEndings: string[] = [];
    const watched = new StorageClient({
      baseUrl: offline.baseUrl,
      token: offline.adminToken,
      fetch: async (input, init) => {
        const isReceive = String(input).endsWith('/receive');
        if (isReceive) receiving++;
        try {
          const response = await fetch(input, init);
          if (isReceive) receiveEndings.push(String(response.status));
          return response;
        } catch (error) {
          if (isReceive) receiveEndings.push((error as Error).name);
          throw error;
        } finally {
          if (isReceive) receiving--;
        }
      },
    });
    const loop = runExecutor({
      client: watched,
      queue,
      signal: stop.signal,
      wait: 20,
      nackDelay: 0,
      onError: (error) => failures.push(error),
      handler: (message) => {
        handled.push([message.payload, message.attempts]);
        if (message.payload === 'fails-once' && message.attempts === 1) throw new Error('try again');
      },
    });
    await expect.poll(() => handled.length === 3 && receiving === 1, { timeout: 30_000 }).toBe(true);
    stop.abort(); // during a 20 s long poll: the loop ends without waiting for it
    await loop;
    expect(receiveEndings.at(-1)).toBe('AbortError');
    expect(handled).toEqual([
      ['ok', 1],
      ['fails-once', 1],
      ['fails-once', 2],
    ]);
    expect(failures).toEqual([new Error('try again')]);
    expect(await client.queues.stats(queue)).toMatchObject({ depth: 0, inFlight: 0 });
  });

  it('receive by push: deliveries, ack/nack/extend over the socket', async () => {
    const queue = `ts-${run}-push`;
    const receiver = client.receive(queue, { max: 2, visibilityTimeout: 60 });
    await receiver.ready;
    const sent = [await client.queues.send(queue, { n: 1 }), await client.queues.send(queue, { n: 2 })];
    const iterator = receiver[Symbol.asyncIterator]();
    const next = async () => (await iterator.next()).value as Delivery;
    const a = await next();
    const b = await next();
    expect([a.id, b.id].sort()).toEqual(sent.map((m) => m.id).sort());
    expect(a).toMatchObject({ queue, attempts: 1, receipt: expect.any(String) });
    await receiver.extend(a, 120);
    await receiver.ack(a);
    await receiver.nack(b, 0);
    const again = await next();
    expect(again).toMatchObject({ id: b.id, attempts: 2 });
    await expect(receiver.ack(b)).rejects.toMatchObject({ name: 'FrameError', code: 'conflict' });
    await client.queues.ack(queue, again); // a pushed receipt is acked over HTTP too
    receiver.close();
    expect(await client.queues.stats(queue)).toMatchObject({ depth: 0, inFlight: 0 });
  });

  it('receive by push: a cut connection gives back, reconnects, receives again', async () => {
    const queue = `ts-${run}-push-cut`;
    const sockets: WebSocket[] = [];
    const cut = new StorageClient({
      baseUrl: offline.baseUrl,
      wsUrl: offline.wsUrl,
      token: offline.adminToken,
      webSocket: (url) => {
        const socket = new WebSocket(url);
        sockets.push(socket);
        return socket as unknown as WebSocketLike;
      },
    });
    const receiver = cut.receive(queue, { reconnectDelayMs: { min: 50, max: 200 } });
    await receiver.ready;
    const { id } = await client.queues.send(queue, 'work');
    const iterator = receiver[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ id, attempts: 1 });
    sockets[0]!.terminate();
    expect((await iterator.next()).value).toMatchObject({ id, attempts: 2 });
    expect(receiver.connections).toBe(2);
    receiver.close();
  });

  it('receive by push: a forbidden queue rejects with the error frame', async () => {
    const { token } = await client.tokens.issue({
      identity: `ts-${run}`,
      scopes: ['queues:receive'],
      resources: ['allowed-*'],
    });
    const limited = new StorageClient({ baseUrl: offline.baseUrl, wsUrl: offline.wsUrl, token });
    const error = await limited.receive(`ts-${run}-secret`).ready.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FrameError);
    expect(error).toMatchObject({ code: 'forbidden' });
  });

  it('docs/clients.md examples: the executor answers the agent through a session channel', async () => {
    const clusterId = `ts-${run}-example`;
    const stop = new AbortController();
    const running = executor(client, clusterId, stop.signal);
    try {
      expect(await agent(client, clusterId, 'kubectl get pods')).toEqual([
        { status: 'running', command: 'kubectl get pods' },
        { status: 'done', command: 'kubectl get pods', output: `ran kubectl get pods on ${clusterId}` },
      ]);
    } finally {
      stop.abort();
      await running;
    }
  });
});

describe('TypeScript client retries', () => {
  let server: Server;
  let baseUrl: string;
  /** The statuses the server answers with, in order; then 200. */
  let script: number[] = [];
  const requests: { body: string }[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => {
        body += chunk;
      });
      request.on('end', () => {
        requests.push({ body });
        const status = script.shift() ?? 200;
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(
          status === 200
            ? JSON.stringify({ id: 'm1' })
            : JSON.stringify({
                error: { code: status === 503 ? 'unavailable' : 'internal', message: `status ${status}` },
              }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    baseUrl = `http://127.0.0.1:${address.port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const fastClient = () =>
    new StorageClient({ baseUrl, token: 't', retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 } });

  it('503 and 429 are retried with the same dedupId, then the answer is returned', async () => {
    requests.length = 0;
    script = [503, 429, 503];
    expect(await fastClient().queues.send('q', { a: 1 })).toEqual({ id: 'm1' });
    expect(requests).toHaveLength(4);
    const dedupIds = requests.map((request) => JSON.parse(request.body).dedupId);
    expect(new Set(dedupIds).size).toBe(1);
    expect(dedupIds[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('attempts are bounded: the last 503 is thrown as a StorageError', async () => {
    requests.length = 0;
    script = [503, 503, 503, 503, 503];
    await expect(fastClient().kv.get('a')).rejects.toMatchObject({ status: 503, code: 'unavailable' });
    expect(requests).toHaveLength(4);
  });

  it('any other status is not retried', async () => {
    requests.length = 0;
    script = [500];
    await expect(fastClient().kv.get('a')).rejects.toMatchObject({ status: 500, code: 'internal' });
    expect(requests).toHaveLength(1);
  });
});

/** A socket whose every incoming frame is handed on twice. */
function doubled(socket: WebSocketLike): WebSocketLike {
  return new Proxy(socket, {
    set(target, property, value) {
      if (property === 'onmessage' && typeof value === 'function') {
        target.onmessage = (event) => {
          value(event);
          value(event);
        };
        return true;
      }
      return Reflect.set(target, property, value);
    },
  });
}
