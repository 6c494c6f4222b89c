/**
 * The WebSocket relay end to end over serverless-offline (`npm start` through the shared
 * harness): the `$connect` authorizer, frames, HTTP publishes relayed as frames, stale
 * connections removed on a 410 from offline's own management endpoint, and the fanout function
 * both behind the threshold and invoked through offline's Lambda endpoint.
 *
 * The service runs on a real Redis under a key prefix of its own, so the test can look at the
 * connection registry the functions keep.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { redisBackend } from '../support/backends.js';
import { type Offline, startOffline } from '../support/offline.js';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const KEY_PREFIX = `kst:e2e:ws:${randomBytes(4).toString('hex')}:`;
const FANOUT_THRESHOLD = 3;
const FANOUT_FUNCTION = 'kubently-storage-dev-fanout';
/** Ceiling for a frame to arrive on a shared, noisy machine; never an expectation. */
const FRAME_TIMEOUT_MS = 20_000;

const unavailable = await redisBackend({ name: 'redis', url: REDIS_URL }).available();
if (unavailable !== undefined && !process.env.CI) console.warn(`\n⚠ e2e WebSocket SKIPPED: ${unavailable}\n`);
const suite = unavailable === undefined || process.env.CI ? describe : describe.skip;
// A skipped run says why in its title, not only in the warning above.
const skipReason = unavailable === undefined || process.env.CI ? '' : ` — SKIPPED: ${unavailable}`;

// Each function's first invocation loads its bundle in a fresh worker: generous ceilings, not expectations.
suite(`WebSocket relay over serverless offline${skipReason}`, { timeout: 120_000 }, () => {
  let offline: Offline;
  let storage: Storage;
  const clients: Client[] = [];

  beforeAll(async () => {
    offline = await startOffline({
      env: {
        STORAGE_BACKEND: 'redis',
        REDIS_URL,
        KEY_PREFIX,
        FANOUT_THRESHOLD: String(FANOUT_THRESHOLD),
      },
    });
    storage = createStorage({ backend: 'redis', keyPrefix: KEY_PREFIX, redis: { url: REDIS_URL } });
    await warmUp();
  }, 400_000);

  /**
   * Each function's first invocation loads its bundle in a new worker; on a loaded machine that
   * can outlast the 10 s Lambda timeout offline enforces (a 504, or "Internal server error" on a
   * socket). Every function the tests use is invoked once first, retried until it answers, so the
   * tests meet warm functions. Nothing is asserted here.
   */
  async function warmUp(): Promise<void> {
    const channel = 'e2e-warm-up';
    await untilOk(async () => {
      const client = await Client.open(`${offline.wsUrl}?token=${encodeURIComponent(offline.adminToken)}`);
      try {
        client.send({ action: 'subscribe', channel });
        await client.next((frame) => frame.type === 'subscribed');
        const published = await api('POST', `/channels/${channel}/messages`, { message: 'warm' });
        if (published.status !== 202) throw new Error(`publish answered ${published.status}`);
        await client.next((frame) => frame.type === 'message');
      } finally {
        client.socket.terminate();
      }
    });
    await untilOk(async () => {
      const issued = await api('POST', '/tokens', { identity: 'e2e-warm-up', scopes: ['kv:read'] });
      if (issued.status !== 201) throw new Error(`POST /tokens answered ${issued.status}`);
    });
    const lambda = offlineLambda();
    try {
      await untilOk(async () => {
        const result = await lambda.send(
          new InvokeCommand({ FunctionName: FANOUT_FUNCTION, Payload: Buffer.from(JSON.stringify({})) }),
        );
        if (result.FunctionError) throw new Error(`fanout: ${result.FunctionError}`);
      });
    } finally {
      lambda.destroy();
    }
  }

  function offlineLambda(): LambdaClient {
    return new LambdaClient({
      endpoint: offline.lambdaEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'e2e', secretAccessKey: 'e2e' },
    });
  }

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

  async function api(method: string, path: string, body?: unknown, token = offline.adminToken) {
    const response = await fetch(`${offline.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : undefined };
  }

  async function token(scopes: string[], resources?: string[]): Promise<string> {
    const response = await api('POST', '/tokens', {
      identity: 'e2e-ws',
      scopes,
      ...(resources ? { resources } : {}),
    });
    expect(response.status, JSON.stringify(response.json)).toBe(201);
    return response.json.token as string;
  }

  async function connect(accessToken: string): Promise<Client> {
    const client = await Client.open(`${offline.wsUrl}?token=${encodeURIComponent(accessToken)}`);
    clients.push(client);
    return client;
  }

  /** The registry's connection id of `client`: the one subscriber of a channel only it joined. */
  async function connectionIdOf(client: Client): Promise<string> {
    const channel = `e2e-whoami-${randomUUID()}`;
    client.send({ action: 'subscribe', channel });
    await client.next((frame) => frame.type === 'subscribed' && frame.channel === channel);
    const { connectionIds } = await storage.connections.subscribers(channel);
    expect(connectionIds).toHaveLength(1);
    client.send({ action: 'unsubscribe', channel });
    await client.next((frame) => frame.type === 'unsubscribed' && frame.channel === channel);
    return connectionIds[0]!;
  }

  it('refuses a connection without a valid token', async () => {
    for (const query of ['', '?token=', '?token=kst_not-a-token']) {
      const status = await Client.refusal(`${offline.wsUrl}${query}`);
      expect([401, 403], `${query}: ${status}`).toContain(status);
    }
    const revoked = await api('POST', '/tokens', { identity: 'e2e-revoked', scopes: ['admin'] });
    expect((await api('DELETE', `/tokens/${revoked.json.id}`)).status).toBe(204);
    expect([401, 403]).toContain(await Client.refusal(`${offline.wsUrl}?token=${revoked.json.token}`));
  });

  it('subscribes, receives HTTP publishes as frames, and is refused forbidden channels', async () => {
    const watcher = await connect(await token(['events:subscribe'], ['e2e-*']));
    const channel = `e2e-builds-${randomUUID()}`;
    watcher.send({ action: 'subscribe', channel });
    expect(await watcher.next()).toEqual({ type: 'subscribed', channel });

    const published = await api('POST', `/channels/${encodeURIComponent(channel)}/messages`, {
      message: { build: 42, ok: true },
    });
    expect(published.status, JSON.stringify(published.json)).toBe(202);
    expect(await watcher.next()).toEqual({
      type: 'message',
      channel,
      id: published.json.id,
      message: { build: 42, ok: true },
      publishedAt: published.json.publishedAt,
    });

    watcher.send({ action: 'subscribe', channel: 'secrets' });
    expect(await watcher.next()).toMatchObject({ type: 'error', code: 'forbidden' });
    watcher.send({ action: 'publish', channel, message: 'no scope' });
    expect(await watcher.next()).toMatchObject({ type: 'error', code: 'forbidden' });
    watcher.send('not json');
    expect(await watcher.next()).toMatchObject({ type: 'error', code: 'bad_request' });

    // A publish over WebSocket reaches the subscriber too; the connection stayed open throughout.
    const publisher = await connect(await token(['events:publish'], ['e2e-*']));
    publisher.send({ action: 'publish', channel, message: 'over ws' });
    expect(await watcher.next()).toMatchObject({ type: 'message', channel, message: 'over ws' });
    const [, second] = (await api('GET', `/channels/${encodeURIComponent(channel)}/messages`)).json.messages;
    expect(second).toMatchObject({ message: 'over ws' });
  });

  it('a dropped client is cleaned up on the next publish, with its subscriptions; the others still receive', async () => {
    const channel = `e2e-drop-${randomUUID()}`;
    const accessToken = await token(['events:subscribe'], ['e2e-*']);
    const live = await connect(accessToken);
    const dropped = await connect(accessToken);
    const droppedId = await connectionIdOf(dropped);
    for (const client of [live, dropped]) {
      client.send({ action: 'subscribe', channel });
      await client.next((frame) => frame.type === 'subscribed');
    }
    // A registration API Gateway no longer knows (its client vanished without a $disconnect).
    const stale = `stale-${randomUUID()}`;
    await storage.connections.register({
      connectionId: stale,
      identity: 'gone',
      tokenId: `t-${stale}`,
      scopes: ['admin'],
      resources: ['*'],
    });
    await storage.connections.subscribe(stale, channel);
    await storage.connections.subscribe(stale, `${channel}-other`);
    dropped.socket.terminate();

    const published = await api('POST', `/channels/${encodeURIComponent(channel)}/messages`, {
      message: 'after drop',
    });
    expect(published.status, JSON.stringify(published.json)).toBe(202);
    expect(await live.next()).toMatchObject({ type: 'message', id: published.json.id });

    // Offline's management endpoint answered 410 for it during the publish: removed, everywhere.
    expect(await storage.connections.get(stale)).toBeUndefined();
    expect((await storage.connections.subscribers(`${channel}-other`)).connectionIds).toEqual([]);
    // The dropped client is gone too ($disconnect or the 410, whichever came first).
    await eventually(async () => expect(await storage.connections.get(droppedId)).toBeUndefined());
    expect((await storage.connections.subscribers(channel)).connectionIds).toEqual([
      await connectionIdOf(live),
    ]);
  });

  it('above FANOUT_THRESHOLD a publish reaches every subscriber through the fanout function', async () => {
    const channel = `e2e-fan-${randomUUID()}`;
    const accessToken = await token(['events:subscribe'], ['e2e-*']);
    const listeners = await Promise.all(
      Array.from({ length: FANOUT_THRESHOLD + 1 }, () => connect(accessToken)),
    );
    for (const listener of listeners) {
      listener.send({ action: 'subscribe', channel });
      await listener.next((frame) => frame.type === 'subscribed');
    }
    const published = await api('POST', `/channels/${encodeURIComponent(channel)}/messages`, {
      message: 'fan',
    });
    expect(published.status, JSON.stringify(published.json)).toBe(202);
    for (const listener of listeners) {
      expect(await listener.next()).toMatchObject({
        type: 'message',
        channel,
        id: published.json.id,
        message: 'fan',
      });
    }
    expect(offline.output()).toContain('event handed to the fan-out function');
    // Logged once the last post is answered, so possibly just after the frames arrived.
    await eventually(async () => expect(offline.output()).toContain('fan-out done'));
  });

  it('the fanout function can be invoked through the offline Lambda endpoint', async () => {
    const channel = `e2e-invoke-${randomUUID()}`;
    const listener = await connect(await token(['events:subscribe'], ['e2e-*']));
    listener.send({ action: 'subscribe', channel });
    await listener.next((frame) => frame.type === 'subscribed');
    const event = {
      id: '00000000000000000001',
      channel,
      message: { direct: true },
      publishedAt: new Date().toISOString(),
    };

    const lambda = offlineLambda();
    try {
      const result = await lambda.send(
        new InvokeCommand({
          FunctionName: FANOUT_FUNCTION,
          InvocationType: 'RequestResponse',
          Payload: Buffer.from(JSON.stringify({ channel, event })),
        }),
      );
      expect(result.FunctionError).toBeUndefined();
      const payload = JSON.parse(Buffer.from(result.Payload ?? []).toString('utf8'));
      expect(payload).toMatchObject({
        channel,
        id: event.id,
        subscribers: 1,
        delivered: 1,
        gone: 0,
        failed: 0,
      });
      expect(await listener.next()).toEqual({ type: 'message', ...event });

      // Input that is not {channel, event} is refused without a 5xx or a retry storm.
      const bad = await lambda.send(
        new InvokeCommand({
          FunctionName: FANOUT_FUNCTION,
          Payload: Buffer.from(JSON.stringify({ channel })),
        }),
      );
      expect(bad.FunctionError).toBeUndefined();
      expect(JSON.parse(Buffer.from(bad.Payload ?? []).toString('utf8'))).toMatchObject({
        delivered: 0,
        error: expect.stringContaining('event'),
      });
    } finally {
      lambda.destroy();
    }
  });
});

/** Runs `attempt` until it resolves (ceiling 120 s), for warming up cold functions. */
async function untilOk(attempt: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

async function eventually(check: () => Promise<void>, timeoutMs = FRAME_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

// biome-ignore lint/suspicious/noExplicitAny: frames are whatever the server sent.
type Frame = any;

/** A WebSocket client that queues the frames it receives. */
class Client {
  private readonly frames: Frame[] = [];
  private waiter: (() => void) | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)));
      this.waiter?.();
    });
  }

  static open(url: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      const client = new Client(socket);
      socket.once('open', () => resolve(client));
      socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`connection refused: HTTP ${response.statusCode}`)),
      );
      socket.once('error', reject);
    });
  }

  /** The HTTP status a refused connection gets (throws if it is accepted). */
  static refusal(url: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.once('open', () => {
        socket.terminate();
        reject(new Error(`${url} was accepted`));
      });
      socket.once('unexpected-response', (_request, response) => {
        resolve(response.statusCode ?? 0);
        socket.terminate();
      });
      socket.once('error', () => {});
    });
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The oldest queued frame matching `predicate` (others stay queued), waiting up to a generous ceiling. */
  async next(predicate: (frame: Frame) => boolean = () => true): Promise<Frame> {
    const deadline = Date.now() + FRAME_TIMEOUT_MS;
    for (;;) {
      const index = this.frames.findIndex(predicate);
      if (index >= 0) return this.frames.splice(index, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no matching frame within ${FRAME_TIMEOUT_MS} ms (queued: ${JSON.stringify(this.frames)})`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }
}
