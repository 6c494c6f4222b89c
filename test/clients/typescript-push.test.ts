/**
 * The TypeScript client's push receiver against a local server speaking docs/api.md's queue push
 * frames (test/clients/push-server.ts): delivery, ack/nack/extend answered over the socket, a
 * stale receipt's error frame, reconnect after a cut connection, a refused receive, and the
 * executor loop on push. The same client against `npm start` is in typescript.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConnectionClosedError,
  type Delivery,
  FrameError,
  runExecutor,
  StorageClient,
} from '../../clients/typescript/src/index.js';
import { type PushServer, startPushServer } from './push-server.js';

const QUEUE = 'jobs';

describe('TypeScript push receiver', { timeout: 30_000 }, () => {
  let server: PushServer;
  let client: StorageClient;

  beforeEach(async () => {
    server = await startPushServer(QUEUE);
    // No HTTP service behind baseUrl: everything here must go over the socket.
    client = new StorageClient({ baseUrl: 'http://127.0.0.1:9', wsUrl: server.url, token: 't' });
  });
  afterEach(() => server.close());

  it('delivers leased messages; ack, nack and extend are answered over the socket', async () => {
    const receiver = client.receive(QUEUE, { max: 2, visibilityTimeout: 60 });
    await receiver.ready;
    expect(server.frames[0]).toEqual({ action: 'receive', queue: QUEUE, max: 2, visibilityTimeout: 60 });
    const first = server.send({ n: 1 });
    const second = server.send({ n: 2 });
    const iterator = receiver[Symbol.asyncIterator]();
    const next = async () => (await iterator.next()).value as Delivery;

    const a = await next();
    const b = await next();
    expect(a).toMatchObject({ queue: QUEUE, id: first, payload: { n: 1 }, attempts: 1 });
    expect(b).toMatchObject({ id: second, attempts: 1, receipt: expect.any(String) });
    await receiver.extend(a, 120);
    await receiver.ack(a);
    await receiver.nack(b, 0);
    const again = await next();
    expect(again).toMatchObject({ id: second, attempts: 2 });
    // The first lease's receipt is stale now: the error frame rejects that ack.
    const stale = await receiver.ack(b).catch((error: unknown) => error);
    expect(stale).toBeInstanceOf(FrameError);
    expect(stale).toMatchObject({ code: 'conflict' });
    await receiver.ack(again);
    expect(server.remaining()).toEqual([]);
    receiver.close();
    await expect.poll(() => server.frames.at(-1)).toEqual({ action: 'stop', queue: QUEUE });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it('a cut connection: it reconnects, receives again, and what it held comes back', async () => {
    const receiver = client.receive(QUEUE, { reconnectDelayMs: { min: 10, max: 50 } });
    await receiver.ready;
    const id = server.send('work');
    const iterator = receiver[Symbol.asyncIterator]();
    const held = (await iterator.next()).value as Delivery;
    expect(held).toMatchObject({ id, attempts: 1 });

    server.dropConnections();
    const redelivered = (await iterator.next()).value as Delivery;
    expect(redelivered).toMatchObject({ id, attempts: 2 });
    expect(receiver.connections).toBe(2);
    expect(server.frames.filter((frame) => frame.action === 'receive')).toHaveLength(2);
    // The first lease went back with its connection: its ack cannot be sent on a socket.
    await receiver.ack(redelivered);
    expect(server.remaining()).toEqual([]);
    receiver.close();
  });

  it('an ack in flight when the connection drops is rejected, not left hanging', async () => {
    const receiver = client.receive(QUEUE, { reconnectDelayMs: { min: 10, max: 50 } });
    await receiver.ready;
    server.send('work');
    const iterator = receiver[Symbol.asyncIterator]();
    const held = (await iterator.next()).value as Delivery;
    server.silent = true;
    const ack = receiver.ack(held).catch((error: unknown) => error);
    await expect.poll(() => server.frames.at(-1)?.action).toBe('ack');
    server.dropConnections();
    expect(await ack).toBeInstanceOf(ConnectionClosedError);
    // While reconnecting there is no socket to ack on: refused at once, not queued.
    await expect(receiver.ack(held)).rejects.toBeInstanceOf(ConnectionClosedError);
    receiver.close();
  });

  it('an error frame answers the request it names, however many older ones wait; one naming none answers none', async () => {
    const receiver = client.receive(QUEUE, { max: 2 });
    await receiver.ready;
    server.send('a');
    server.send('b');
    const iterator = receiver[Symbol.asyncIterator]();
    const a = (await iterator.next()).value as Delivery;
    const b = (await iterator.next()).value as Delivery;
    // The ack of a waits for its answer (answers to one connection's frames come in any order).
    server.silent = true;
    let aSettled = false;
    const ackA = receiver.ack(a).finally(() => {
      aSettled = true;
    });
    await expect.poll(() => server.frames.at(-1)).toMatchObject({ action: 'ack', id: a.id });
    server.broadcast({ type: 'error', code: 'conflict', message: 'not yours', queue: QUEUE, id: 'nobody' });
    server.silent = false;
    const stale = await receiver.ack({ ...b, receipt: 'stale' }).catch((error: unknown) => error);
    expect(stale).toMatchObject({ code: 'conflict' });
    expect(aSettled).toBe(false);
    server.dropConnections();
    await expect(ackA).rejects.toBeInstanceOf(ConnectionClosedError);
    receiver.close();
  });

  it('pings an idle connection, so API Gateway does not close it', async () => {
    const receiver = client.receive(QUEUE, { pingIntervalMs: 20 });
    await receiver.ready;
    await expect
      .poll(() => server.frames.filter((frame) => frame.action === 'ping').length)
      .toBeGreaterThan(1);
    receiver.close();
  });

  it('a refused receive ends the receiver with the error frame', async () => {
    server.refuseReceive = { code: 'forbidden', message: 'token lacks queues:receive on jobs' };
    const receiver = client.receive(QUEUE);
    await expect(receiver.ready).rejects.toMatchObject({ name: 'FrameError', code: 'forbidden' });
    await expect(receiver[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'forbidden' });
  });

  it('runExecutor by push: acks what succeeds, nacks what throws, sends stop on abort', async () => {
    server.send('ok');
    server.send('fails-once');
    const handled: [unknown, number][] = [];
    const failures: unknown[] = [];
    const stop = new AbortController();
    const loop = runExecutor({
      client,
      queue: QUEUE,
      signal: stop.signal,
      delivery: 'push',
      nackDelay: 0,
      onError: (error) => failures.push(error),
      handler: (message) => {
        handled.push([message.payload, message.attempts]);
        if (message.payload === 'fails-once' && message.attempts === 1) throw new Error('try again');
      },
    });
    await expect.poll(() => server.remaining()).toEqual([]);
    stop.abort();
    await loop;
    expect(handled).toEqual([
      ['ok', 1],
      ['fails-once', 1],
      ['fails-once', 2],
    ]);
    expect(failures).toEqual([new Error('try again')]);
    await expect
      .poll(() => server.frames.map((frame) => frame.action))
      .toEqual(['receive', 'ack', 'nack', 'ack', 'stop']);
  });

  it('runExecutor with delivery "push" rejects when the socket refuses to receive', async () => {
    server.refuseReceive = { code: 'bad_request', message: 'action: expected "subscribe", …' };
    const stop = new AbortController();
    await expect(
      runExecutor({ client, queue: QUEUE, signal: stop.signal, delivery: 'push', handler: () => {} }),
    ).rejects.toMatchObject({ code: 'bad_request' });
  });

  it('runExecutor "auto" falls back to long polls when the socket refuses to receive', async () => {
    server.refuseReceive = { code: 'bad_request', message: 'action: expected "subscribe", …' };
    const requests: string[] = [];
    let polls = 0;
    const http = new StorageClient({
      baseUrl: 'http://service.invalid',
      wsUrl: server.url,
      token: 't',
      // The HTTP API: the first long poll answers one message, later ones nothing; acks succeed.
      fetch: async (input) => {
        const path = new URL(String(input)).pathname;
        requests.push(path);
        if (path.endsWith('/ack')) return new Response(null, { status: 204 });
        const message = { id: 'm1', receipt: 'r1', payload: 'polled', attempts: 1, enqueuedAt: '' };
        if (polls++ === 0) return Response.json({ messages: [message] });
        await new Promise((resolve) => setTimeout(resolve, 50)); // an empty long poll takes a while
        return Response.json({ messages: [] });
      },
    });
    const handled: unknown[] = [];
    const failures: unknown[] = [];
    const stop = new AbortController();
    const loop = runExecutor({
      client: http,
      queue: QUEUE,
      signal: stop.signal,
      onError: (error) => failures.push(error),
      handler: (message) => {
        handled.push(message.payload);
      },
    });
    await expect.poll(() => requests.includes(`/queues/${QUEUE}/messages/m1/ack`)).toBe(true);
    stop.abort();
    await loop;
    expect(handled).toEqual(['polled']);
    expect(failures).toEqual([expect.objectContaining({ name: 'FrameError', code: 'bad_request' })]);
    expect(requests[0]).toBe(`/queues/${QUEUE}/receive`);
  });
});
