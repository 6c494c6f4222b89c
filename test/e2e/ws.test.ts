/**
 * The WebSocket relay end to end over serverless-offline (`npm start` through the shared
 * harness): the `$connect` authorizer (least authority, the per-token limit), frames, HTTP
 * publishes relayed as frames, stale connections removed on a 410 from offline's own management
 * endpoint, the fanout function both behind the threshold and invoked through offline's Lambda
 * endpoint, and connections closed through offline's `DELETE /@connections/{id}` when their
 * token is revoked or expires (the revoke → close latency is printed, never asserted).
 *
 * The service runs on a real Redis under a key prefix of its own, so the test can look at the
 * connection registry the functions keep.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { redisBackend } from '../support/backends.js';
import { type Offline, startOffline } from '../support/servers/offline.js';
import { FRAME_TIMEOUT_MS, WsClient } from '../support/ws-client.js';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const KEY_PREFIX = `kst:e2e:ws:${randomBytes(4).toString('hex')}:`;
const FANOUT_THRESHOLD = 3;
const FANOUT_FUNCTION = 'kubently-storage-dev-fanout';
const CLEANUP_FUNCTION = 'kubently-storage-dev-cleanup';
/** Ceiling for a frame to arrive on a shared, noisy machine; never an expectation. */

const unavailable = await redisBackend({ name: 'redis', url: REDIS_URL }).available();
if (unavailable !== undefined && !process.env.CI) console.warn(`\n⚠ e2e WebSocket SKIPPED: ${unavailable}\n`);
const suite = unavailable === undefined || process.env.CI ? describe : describe.skip;
// A skipped run says why in its title, not only in the warning above.
const skipReason = unavailable === undefined || process.env.CI ? '' : ` — SKIPPED: ${unavailable}`;

// Each function's first invocation loads its bundle in a fresh worker: generous ceilings, not expectations.
suite(`WebSocket relay over serverless offline${skipReason}`, { timeout: 120_000 }, () => {
  let offline: Offline;
  let storage: Storage;
  const clients: WsClient[] = [];

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
      const client = await WsClient.open(`${offline.wsUrl}?token=${encodeURIComponent(offline.adminToken)}`);
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
    await untilOk(async () => {
      const revoked = await api('DELETE', `/tokens/${randomUUID()}`);
      if (revoked.status !== 404) throw new Error(`DELETE /tokens answered ${revoked.status}`);
    });
    const lambda = offlineLambda();
    try {
      for (const functionName of [FANOUT_FUNCTION, CLEANUP_FUNCTION]) {
        await untilOk(async () => {
          const result = await lambda.send(
            new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify({})) }),
          );
          if (result.FunctionError) throw new Error(`${functionName}: ${result.FunctionError}`);
        });
      }
    } finally {
      lambda.destroy();
    }
  }

  /** Runs the scheduled cleanup once, as its schedule would; answers its result. */
  async function runCleanup(): Promise<Record<string, unknown>> {
    const lambda = offlineLambda();
    try {
      const result = await lambda.send(
        new InvokeCommand({ FunctionName: CLEANUP_FUNCTION, Payload: Buffer.from(JSON.stringify({})) }),
      );
      expect(result.FunctionError).toBeUndefined();
      return JSON.parse(Buffer.from(result.Payload ?? []).toString('utf8'));
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
    return (await issue(scopes, resources)).token;
  }

  async function issue(
    scopes: string[],
    resources?: string[],
    ttl?: number,
  ): Promise<{ id: string; token: string; expiresAt: string | null }> {
    const response = await api('POST', '/tokens', {
      identity: 'e2e-ws',
      scopes,
      ...(resources ? { resources } : {}),
      ...(ttl === undefined ? {} : { ttl }),
    });
    expect(response.status, JSON.stringify(response.json)).toBe(201);
    return response.json;
  }

  async function connect(accessToken: string): Promise<WsClient> {
    const client = await WsClient.open(`${offline.wsUrl}?token=${encodeURIComponent(accessToken)}`);
    clients.push(client);
    return client;
  }

  /** The registry's connection id of `client`: the one subscriber of a channel only it joined. */
  async function connectionIdOf(client: WsClient): Promise<string> {
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
      const status = await WsClient.refusal(`${offline.wsUrl}${query}`);
      expect([401, 403], `${query}: ${status}`).toContain(status);
    }
    const revoked = await api('POST', '/tokens', { identity: 'e2e-revoked', scopes: ['admin'] });
    expect((await api('DELETE', `/tokens/${revoked.json.id}`)).status).toBe(204);
    expect([401, 403]).toContain(await WsClient.refusal(`${offline.wsUrl}?token=${revoked.json.token}`));
  });

  it('least authority: a valid token that cannot use the socket (kv:read) is refused at connect', async () => {
    for (const scopes of [['kv:read'], ['kv:read', 'kv:write', 'queues:send']]) {
      expect(await WsClient.refusal(`${offline.wsUrl}?token=${await token(scopes)}`), scopes.join(',')).toBe(
        403,
      );
    }
    const allowed = await connect(await token(['kv:read', 'events:subscribe']));
    expect(allowed.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('a token holds at most 10 open connections: of 15 opened at once 10 are accepted, then the 11th is refused with 409', async () => {
    const accessToken = await token(['events:subscribe'], ['e2e-*']);
    const url = `${offline.wsUrl}?token=${encodeURIComponent(accessToken)}`;
    const burst = await Promise.allSettled(Array.from({ length: 15 }, () => WsClient.open(url)));
    const accepted = burst.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    clients.push(...accepted);
    const refused = burst.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    expect(accepted).toHaveLength(10);
    expect(refused).toEqual(Array(5).fill('Error: connection refused: HTTP 409'));
    expect(await WsClient.refusal(url)).toBe(409);

    // Closing one makes room for one.
    const closed = accepted[0]!.closed();
    accepted[0]!.socket.close();
    await closed;
    await vi.waitFor(
      async () => {
        clients.push(await WsClient.open(url));
      },
      { timeout: FRAME_TIMEOUT_MS },
    );
    expect(await WsClient.refusal(url)).toBe(409);
  });

  it('revoking a token closes its open socket at once; nothing more reaches it (latency printed)', async () => {
    const channel = `e2e-revoke-${randomUUID()}`;
    const issued = await issue(['events:subscribe'], ['e2e-*']);
    const victim = await connect(issued.token);
    const bystander = await connect(await token(['events:subscribe'], ['e2e-*']));
    for (const client of [victim, bystander]) {
      client.send({ action: 'subscribe', channel });
      await client.next((frame) => frame.type === 'subscribed');
    }
    const closed = victim.closed();

    const revoked = await api('DELETE', `/tokens/${issued.id}`);
    const answeredAt = performance.now();
    expect(revoked.status).toBe(204);
    const { at } = await closed;
    console.log(`revoke → close: ${Math.round(at - answeredAt)} ms after DELETE /tokens/{id} answered`);
    expect(await victim.next()).toMatchObject({ type: 'error', code: 'unauthorized' });

    const published = await api('POST', `/channels/${encodeURIComponent(channel)}/messages`, {
      message: 'after',
    });
    expect(published.status).toBe(202);
    expect(await bystander.next((frame) => frame.type === 'message')).toMatchObject({ message: 'after' });
    expect(victim.queued()).toEqual([]);
    expect((await storage.connections.subscribers(channel)).connectionIds).toEqual([
      await connectionIdOf(bystander),
    ]);
  });

  it('an expired token: a frame after expiry is refused and closes its socket; the cleanup closes an idle one', async () => {
    const issued = await issue(['events:subscribe', 'events:publish'], ['e2e-*'], 3);
    const active = await connect(issued.token);
    const idle = await connect(issued.token);
    const channel = `e2e-expiry-${randomUUID()}`;
    active.send({ action: 'subscribe', channel });
    expect(await active.next()).toEqual({ type: 'subscribed', channel });
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, Date.parse(issued.expiresAt!) - Date.now()) + 200),
    );

    const activeClosed = active.closed();
    active.send({ action: 'publish', channel, message: 'too late' });
    expect(await active.next()).toMatchObject({ type: 'error', code: 'unauthorized' });
    await activeClosed;
    expect((await api('GET', `/channels/${encodeURIComponent(channel)}/messages`)).json.messages).toEqual([]);

    // The idle socket sent nothing: the scheduled cleanup closes it.
    expect(idle.socket.readyState).toBe(WebSocket.OPEN);
    const idleClosed = idle.closed();
    const result = await runCleanup();
    expect(result.closedConnections).toBeGreaterThanOrEqual(1);
    await idleClosed;
    expect(await idle.next()).toMatchObject({ type: 'error', code: 'unauthorized' });
    expect((await storage.connections.byToken(issued.id)).connectionIds).toEqual([]);
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
    await vi.waitFor(async () => expect(await storage.connections.get(droppedId)).toBeUndefined(), {
      timeout: FRAME_TIMEOUT_MS,
    });
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
    await vi.waitFor(async () => expect(offline.output()).toContain('fan-out done'), {
      timeout: FRAME_TIMEOUT_MS,
    });
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
  await vi.waitFor(attempt, { timeout: 120_000, interval: 500 });
}
