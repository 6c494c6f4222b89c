/**
 * The WebSocket relay in process: the `$connect` authorizer, the connect / disconnect / `$default`
 * routes, and the relay of HTTP and WebSocket publishes, on memory, Redis and PostgreSQL; the
 * token checked again on every frame, and connections closed when their token is revoked or
 * expires. Frames go out (and connections are closed) through the real AWS SDK client to a
 * local stand-in for API Gateway's management API.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeEach, expect, it, vi } from 'vitest';
import type { WebSocketEvent } from '../../functions/ws.js';
import { createStorage } from '../../lib/storage/index.js';
import type { IssueTokenInput, Scope, Storage } from '../../lib/storage/types.js';
import { relayEnv, startAwsStub } from '../support/aws-stub.js';
import { lambdaContext } from '../support/lambda.js';
import { call, describeOnBackends } from './api-support.js';

process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const stub = await startAwsStub();
const saved = { ...process.env };
Object.assign(process.env, relayEnv(stub));
delete process.env.IS_OFFLINE;
delete process.env.FANOUT_THRESHOLD;
delete process.env.FANOUT_FUNCTION_NAME;

const { handler: authorizer } = await import('../../functions/authorizer.js');
const { handler: cleanup } = await import('../../functions/cleanup.js');
const ws = await import('../../functions/ws.js');
const { logger } = await import('../../functions/runtime/logger.js');
const { useStorage } = await import('../../functions/runtime/storage.js');

afterAll(async () => {
  await stub.close();
  process.env = saved;
});

beforeEach(() => stub.reset());
afterEach(() => {
  vi.restoreAllMocks();
  expect(stub.unexpected).toEqual([]);
});

const METHOD_ARN = 'arn:aws:execute-api:us-east-1:123456789012:abc123/dev/$connect';

function authorizerEvent(query?: Record<string, string>): APIGatewayRequestAuthorizerEvent {
  return {
    type: 'REQUEST',
    methodArn: METHOD_ARN,
    resource: '$connect',
    path: '',
    httpMethod: 'GET',
    headers: { host: 'abc123.execute-api.us-east-1.amazonaws.com' },
    multiValueHeaders: null,
    pathParameters: null,
    queryStringParameters: query ?? null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    requestContext: {
      routeKey: '$connect',
      eventType: 'CONNECT',
      connectionId: randomUUID(),
      requestId: randomUUID(),
      stage: 'dev',
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      apiId: 'abc123',
    } as unknown as APIGatewayRequestAuthorizerEvent['requestContext'],
  };
}

async function authorize(query?: Record<string, string>): Promise<APIGatewayAuthorizerResult> {
  return authorizer(authorizerEvent(query), lambdaContext('wsAuthorizer'));
}

function effect(result: APIGatewayAuthorizerResult): string | undefined {
  return (result.policyDocument.Statement[0] as { Effect?: string }).Effect;
}

function wsEvent(
  connectionId: string,
  routeKey: string,
  extra: Partial<WebSocketEvent> = {},
): WebSocketEvent {
  return {
    requestContext: {
      connectionId,
      routeKey,
      eventType: routeKey === '$connect' ? 'CONNECT' : routeKey === '$disconnect' ? 'DISCONNECT' : 'MESSAGE',
      requestId: randomUUID(),
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      stage: 'dev',
      ...extra.requestContext,
    },
    isBase64Encoded: false,
    ...(extra.body === undefined ? {} : { body: extra.body }),
  };
}

/** Runs the authorizer on a fresh token and `$connect` with its context, as API Gateway does. */
async function open(storage: Storage, grant: Partial<IssueTokenInput> = {}): Promise<string> {
  const issued = await storage.tokens.issue({ identity: 'agent', scopes: ['admin'], ...grant });
  const { connectionId, statusCode } = await connectWith(issued.token);
  expect(statusCode).toBe(200);
  return connectionId;
}

/** The authorizer, then (when it allows) `$connect`, for one token: what API Gateway does. */
async function connectWith(token: string): Promise<{ connectionId: string; statusCode: number }> {
  const result = await authorize({ token });
  expect(effect(result)).toBe('Allow');
  const connectionId = `conn-${randomUUID()}`;
  const response = await ws.connect(
    wsEvent(connectionId, '$connect', {
      requestContext: {
        connectionId,
        authorizer: { principalId: result.principalId, integrationLatency: 12, ...result.context },
      },
    }),
    lambdaContext('wsConnect'),
  );
  return { connectionId, statusCode: response.statusCode };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function send(connectionId: string, frame: unknown): Promise<void> {
  const body = typeof frame === 'string' ? frame : JSON.stringify(frame);
  const response = await ws.message(wsEvent(connectionId, '$default', { body }), lambdaContext('wsDefault'));
  // The connection stays open whatever the frame: the route answers 200, errors go as frames.
  expect(response.statusCode).toBe(200);
}

/** The frames the connection received since `from`. */
function framesOf(connectionId: string, from = 0) {
  return stub.framesFor(connectionId).slice(from);
}

function lastFrame(connectionId: string) {
  return stub.framesFor(connectionId).at(-1);
}

await describeOnBackends('WebSocket relay', ({ storage }) => {
  // ---------------------------------------------------------------------------------------
  // the $connect authorizer

  it('authorizer: a missing or empty token is denied', async () => {
    const queries: (Record<string, string> | undefined)[] = [undefined, {}, { token: '' }, { other: 'x' }];
    for (const query of queries) {
      const result = await authorize(query);
      expect(effect(result)).toBe('Deny');
      expect(result.policyDocument.Statement[0]).toMatchObject({ Resource: METHOD_ARN });
      expect(result.context).toBeUndefined();
    }
  });

  it('authorizer: an unknown token is denied', async () => {
    const result = await authorize({ token: `kst_${randomUUID()}` });
    expect(effect(result)).toBe('Deny');
  });

  it('authorizer: an expired token is denied', async () => {
    const issued = await storage().tokens.issue({ identity: 'short', scopes: ['admin'], ttl: 0.2 });
    // Waits past the expiry; nothing here depends on how long anything takes.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(effect(await authorize({ token: issued.token }))).toBe('Deny');
  });

  it('authorizer: a revoked token is denied', async () => {
    const issued = await storage().tokens.issue({ identity: 'revoked', scopes: ['admin'] });
    expect(effect(await authorize({ token: issued.token }))).toBe('Allow');
    await storage().tokens.revoke(issued.id);
    expect(effect(await authorize({ token: issued.token }))).toBe('Deny');
  });

  it('authorizer: a valid token is allowed on the method ARN with its grants as primitive context, never logged', async () => {
    const calls: unknown[] = [];
    for (const level of ['debug', 'info', 'warn', 'error'] as const) {
      vi.spyOn(logger, level).mockImplementation((...args: unknown[]) => {
        calls.push(args);
      });
    }
    const issued = await storage().tokens.issue({
      identity: 'executor-prod',
      scopes: ['events:subscribe', 'events:publish'],
      resources: ['jobs:*', 'status'],
    });
    const result = await authorize({ token: issued.token });

    expect(result).toEqual({
      principalId: 'executor-prod',
      policyDocument: {
        Version: '2012-10-17',
        Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: METHOD_ARN }],
      },
      context: {
        identity: 'executor-prod',
        tokenId: issued.id,
        tokenExpiresAt: '',
        scopes: 'events:subscribe,events:publish',
        resources: '["jobs:*","status"]',
      },
    });
    for (const value of Object.values(result.context ?? {})) expect(typeof value).toBe('string');
    expect(JSON.stringify(calls)).not.toContain(issued.token);
  });

  it('authorizer: least authority — a valid token without a WebSocket scope is denied', async () => {
    const refused: Scope[][] = [['kv:read'], ['kv:read', 'kv:write', 'queues:send'], ['sessions:read']];
    for (const scopes of refused) {
      const issued = await storage().tokens.issue({ identity: 'no-socket', scopes });
      const result = await authorize({ token: issued.token });
      expect(effect(result), scopes.join(',')).toBe('Deny');
      expect(result.context).toBeUndefined();
    }
    const allowed: Scope[][] = [['events:subscribe'], ['events:publish'], ['queues:receive'], ['admin']];
    for (const scopes of allowed) {
      const issued = await storage().tokens.issue({ identity: 'socket', scopes: ['kv:read', ...scopes] });
      expect(effect(await authorize({ token: issued.token })), scopes.join(',')).toBe('Allow');
    }
  });

  it("authorizer: the context carries the token's expiry", async () => {
    const issued = await storage().tokens.issue({
      identity: 'expiring',
      scopes: ['events:subscribe'],
      ttl: 600,
    });
    const result = await authorize({ token: issued.token });
    expect(result.context).toMatchObject({ tokenId: issued.id, tokenExpiresAt: issued.expiresAt });
  });

  // ---------------------------------------------------------------------------------------
  // $connect, $disconnect

  it('$connect registers the connection with the token’s grants for 2 hours', async () => {
    const connectionId = await open(storage(), {
      identity: 'watcher',
      scopes: ['events:subscribe'],
      resources: ['jobs:*'],
    });
    const connection = await storage().connections.get(connectionId);
    expect(connection).toMatchObject({
      connectionId,
      identity: 'watcher',
      scopes: ['events:subscribe'],
      resources: ['jobs:*'],
      tokenId: expect.any(String),
      tokenExpiresAt: null,
      channels: [],
    });
    const lifetime = Date.parse(connection!.expiresAt) - Date.parse(connection!.connectedAt);
    expect(lifetime).toBeGreaterThan(7190_000);
    expect(lifetime).toBeLessThanOrEqual(7200_000);
  });

  it('$connect without an authorizer context is refused and registers nothing', async () => {
    const connectionId = `conn-${randomUUID()}`;
    for (const authorizer of [
      undefined,
      { principalId: 'x' },
      { identity: 'x', scopes: 'bogus', resources: '[]' },
      // Without the token's id the connection could never be checked again.
      { identity: 'x', scopes: 'admin', resources: '["*"]', tokenExpiresAt: '' },
      { identity: 'x', tokenId: '', scopes: 'admin', resources: '["*"]', tokenExpiresAt: '' },
    ]) {
      const response = await ws.connect(
        wsEvent(connectionId, '$connect', {
          requestContext: { connectionId, ...(authorizer ? { authorizer } : {}) },
        }),
        lambdaContext('wsConnect'),
      );
      expect(response.statusCode).toBe(401);
    }
    expect(await storage().connections.get(connectionId)).toBeUndefined();
  });

  it('$connect refuses a token that cannot use the socket even when it got past an authorizer', async () => {
    const connectionId = `conn-${randomUUID()}`;
    const response = await ws.connect(
      wsEvent(connectionId, '$connect', {
        requestContext: {
          connectionId,
          authorizer: {
            identity: 'x',
            tokenId: 't',
            tokenExpiresAt: '',
            scopes: 'kv:read',
            resources: '["*"]',
          },
        },
      }),
      lambdaContext('wsConnect'),
    );
    expect(response.statusCode).toBe(403);
    expect(await storage().connections.get(connectionId)).toBeUndefined();
  });

  it('$connect refuses the 11th open connection of one token with 409; closing one makes room', async () => {
    const issued = await storage().tokens.issue({ identity: 'many', scopes: ['events:subscribe'] });
    const opened: string[] = [];
    for (let i = 0; i < 10; i++) {
      const { connectionId, statusCode } = await connectWith(issued.token);
      expect(statusCode, `connection ${i + 1}`).toBe(200);
      opened.push(connectionId);
    }
    const eleventh = await connectWith(issued.token);
    expect(eleventh.statusCode).toBe(409);
    expect(await storage().connections.get(eleventh.connectionId)).toBeUndefined();
    expect((await storage().connections.byToken(issued.id)).connectionIds.sort()).toEqual(opened.sort());
    // Another token is not held back.
    expect((await open(storage(), { scopes: ['events:subscribe'] })).length).toBeGreaterThan(0);
    await ws.disconnect(wsEvent(opened[0]!, '$disconnect'), lambdaContext('wsDisconnect'));
    expect((await connectWith(issued.token)).statusCode).toBe(200);
  });

  it('$disconnect forgets the connection and its subscriptions', async () => {
    const connectionId = await open(storage());
    await send(connectionId, { action: 'subscribe', channel: 'disconnect-test' });
    const response = await ws.disconnect(wsEvent(connectionId, '$disconnect'), lambdaContext('wsDisconnect'));
    expect(response.statusCode).toBe(200);
    expect(await storage().connections.get(connectionId)).toBeUndefined();
    expect((await storage().connections.subscribers('disconnect-test')).connectionIds).toEqual([]);
    // A second $disconnect (API Gateway may repeat it) is harmless.
    expect(
      (await ws.disconnect(wsEvent(connectionId, '$disconnect'), lambdaContext('wsDisconnect'))).statusCode,
    ).toBe(200);
  });

  // ---------------------------------------------------------------------------------------
  // frames

  it('subscribe and unsubscribe answer their frames to the sender and update the registry', async () => {
    const connectionId = await open(storage());
    await send(connectionId, { action: 'subscribe', channel: 'builds' });
    expect(framesOf(connectionId)).toEqual([{ type: 'subscribed', channel: 'builds' }]);
    expect((await storage().connections.get(connectionId))?.channels).toEqual(['builds']);
    expect((await storage().connections.subscribers('builds')).connectionIds).toEqual([connectionId]);

    await send(connectionId, { action: 'unsubscribe', channel: 'builds' });
    expect(framesOf(connectionId, 1)).toEqual([{ type: 'unsubscribed', channel: 'builds' }]);
    expect((await storage().connections.get(connectionId))?.channels).toEqual([]);
    expect((await storage().connections.subscribers('builds')).connectionIds).toEqual([]);

    // Unsubscribing again is idempotent.
    await send(connectionId, { action: 'unsubscribe', channel: 'builds' });
    expect(lastFrame(connectionId)).toEqual({ type: 'unsubscribed', channel: 'builds' });
  });

  it('a publish over WebSocket is stored and relayed to every subscriber, the sender included when subscribed', async () => {
    const channel = `pub-${randomUUID()}`;
    const listener = await open(storage(), { scopes: ['events:subscribe'] });
    const sender = await open(storage(), { scopes: ['events:publish', 'events:subscribe'] });
    const bystander = await open(storage());
    await send(listener, { action: 'subscribe', channel });
    await send(bystander, { action: 'subscribe', channel: `${channel}-other` });

    await send(sender, { action: 'publish', channel, message: { step: 1, ok: true } });
    const [stored] = await storage().events.history(channel);
    expect(stored).toMatchObject({ channel, message: { step: 1, ok: true } });
    expect(lastFrame(listener)).toEqual({
      type: 'message',
      channel,
      id: stored!.id,
      message: { step: 1, ok: true },
      publishedAt: stored!.publishedAt,
    });
    expect(framesOf(sender)).toEqual([]); // no frame for a publish unless subscribed
    expect(framesOf(bystander)).toEqual([{ type: 'subscribed', channel: `${channel}-other` }]);

    await send(sender, { action: 'subscribe', channel });
    await send(sender, { action: 'publish', channel, message: null });
    const history = await storage().events.history(channel);
    expect(history).toHaveLength(2);
    for (const connectionId of [listener, sender]) {
      expect(lastFrame(connectionId)).toMatchObject({
        type: 'message',
        channel,
        id: history[1]!.id,
        message: null,
      });
    }
  });

  it('a publish over HTTP reaches the WebSocket subscribers as a message frame', async () => {
    const channel = `http-${randomUUID()}`;
    const listener = await open(storage(), { scopes: ['events:subscribe'], resources: ['http-*'] });
    await send(listener, { action: 'subscribe', channel });
    const admin = await storage().tokens.issue({ identity: 'publisher', scopes: ['events:publish'] });

    const response = await call('POST /channels/{channel}/messages', {
      params: { channel },
      token: admin.token,
      body: { message: { text: 'hello' } },
    });
    expect(response.status).toBe(202);
    expect(lastFrame(listener)).toEqual({
      type: 'message',
      channel,
      id: response.json.id,
      message: { text: 'hello' },
      publishedAt: response.json.publishedAt,
    });
  });

  it('every subscribe and publish is checked against the scopes and resource globs of the connection', async () => {
    const subscribeOnly = await open(storage(), { scopes: ['events:subscribe'], resources: ['jobs:*'] });
    await send(subscribeOnly, { action: 'subscribe', channel: 'jobs:42' });
    expect(lastFrame(subscribeOnly)).toEqual({ type: 'subscribed', channel: 'jobs:42' });

    await send(subscribeOnly, { action: 'subscribe', channel: 'secrets' });
    expect(lastFrame(subscribeOnly)).toEqual({
      type: 'error',
      code: 'forbidden',
      message: expect.stringContaining('"secrets"'),
    });
    await send(subscribeOnly, { action: 'publish', channel: 'jobs:42', message: 'x' });
    expect(lastFrame(subscribeOnly)).toEqual({
      type: 'error',
      code: 'forbidden',
      message: expect.stringContaining('events:publish'),
    });
    expect(await storage().events.history('jobs:42')).toEqual([]);

    const publishOnly = await open(storage(), { scopes: ['events:publish'], resources: ['jobs:*'] });
    await send(publishOnly, { action: 'subscribe', channel: 'jobs:42' });
    expect(lastFrame(publishOnly)).toEqual({
      type: 'error',
      code: 'forbidden',
      message: expect.stringContaining('events:subscribe'),
    });
    await send(publishOnly, { action: 'publish', channel: 'other', message: 'x' });
    expect(lastFrame(publishOnly)).toMatchObject({ type: 'error', code: 'forbidden' });

    const queuesOnly = await open(storage(), { scopes: ['queues:receive'] as Scope[] });
    await send(queuesOnly, { action: 'subscribe', channel: 'jobs:42' });
    expect(lastFrame(queuesOnly)).toMatchObject({ type: 'error', code: 'forbidden' });

    // The refusals subscribed nothing; the connections stay registered and open.
    expect((await storage().connections.subscribers('secrets')).connectionIds).toEqual([]);
    expect((await storage().connections.get(publishOnly))?.channels).toEqual([]);
    for (const id of [subscribeOnly, publishOnly, queuesOnly])
      expect(await storage().connections.get(id)).toBeDefined();
    expect(stub.closed).toEqual([]);
  });

  it('refuses frames over 32 KB and messages over 128 KB with a payload_too_large frame', async () => {
    const connectionId = await open(storage());
    const channel = `big-${randomUUID()}`;
    await send(connectionId, { action: 'publish', channel, message: 'x'.repeat(33 * 1024) });
    expect(lastFrame(connectionId)).toEqual({
      type: 'error',
      code: 'payload_too_large',
      message: expect.stringMatching(/frames are limited to 32768 bytes/),
    });
    await send(connectionId, { action: 'publish', channel, message: 'x'.repeat(129 * 1024) });
    expect(lastFrame(connectionId)).toEqual({
      type: 'error',
      code: 'payload_too_large',
      message: expect.stringMatching(/messages are limited to 131072 bytes/),
    });
    expect(await storage().events.history(channel)).toEqual([]);

    // Just under the frame limit goes through.
    await send(connectionId, { action: 'subscribe', channel });
    await send(connectionId, { action: 'publish', channel, message: 'y'.repeat(32 * 1024 - 100) });
    expect(lastFrame(connectionId)).toMatchObject({ type: 'message', channel });
  });

  it('an event too large for a WebSocket frame reaches subscribers as an error frame naming it', async () => {
    const channel = `huge-${randomUUID()}`;
    const listener = await open(storage());
    await send(listener, { action: 'subscribe', channel });
    const admin = await storage().tokens.issue({ identity: 'publisher', scopes: ['admin'] });
    const response = await call('POST /channels/{channel}/messages', {
      params: { channel },
      token: admin.token,
      body: { message: 'z'.repeat(200 * 1024) },
    });
    expect(response.status).toBe(202);
    expect(lastFrame(listener)).toEqual({
      type: 'error',
      code: 'payload_too_large',
      message: expect.stringContaining(`message ${response.json.id} on channel "${channel}"`),
    });
  });

  it('answers malformed frames with a bad_request frame, and the connection stays usable', async () => {
    const connectionId = await open(storage());
    const bad: [unknown, RegExp][] = [
      ['not json', /not valid JSON/],
      ['', /empty frame/],
      ['[1,2]', /must be a JSON object, got an array/],
      ['"subscribe"', /must be a JSON object/],
      [{ channel: 'a' }, /action: expected/],
      [{ action: 'dance', channel: 'a' }, /action: expected .* got "dance"/],
      [{ action: 42, channel: 'a' }, /action: expected/],
      [{ action: 'subscribe', channel: 'a', extra: 1 }, /unknown field "extra"/],
      [{ action: 'subscribe', channel: 'a', message: 1 }, /unknown field "message"/],
      [{ action: 'subscribe' }, /channel: expected a string/],
      [{ action: 'subscribe', channel: '' }, /channel: must not be empty/],
      [{ action: 'subscribe', channel: 'a\u0001b' }, /channel: must not contain control characters/],
      [{ action: 'subscribe', channel: 'é'.repeat(200) }, /channel: is 400 bytes/],
      [{ action: 'subscribe', channel: 7 }, /channel: expected a string/],
      [{ action: 'publish', channel: 'a' }, /message: missing/],
    ];
    for (const [frame, message] of bad) {
      const before = framesOf(connectionId).length;
      await send(connectionId, frame);
      expect(framesOf(connectionId, before), JSON.stringify(frame)).toEqual([
        { type: 'error', code: 'bad_request', message: expect.stringMatching(message) },
      ]);
    }
    const binary = await ws.message(
      {
        ...wsEvent(connectionId, '$default', { body: Buffer.from('{}').toString('base64') }),
        isBase64Encoded: true,
      },
      lambdaContext('wsDefault'),
    );
    expect(binary.statusCode).toBe(200);
    expect(lastFrame(connectionId)).toMatchObject({ type: 'error', code: 'bad_request', message: /binary/ });

    await send(connectionId, { action: 'subscribe', channel: 'still-open' });
    expect(lastFrame(connectionId)).toEqual({ type: 'subscribed', channel: 'still-open' });
    // Nothing was logged as an unexpected failure.
    expect(framesOf(connectionId).some((frame) => frame.code === 'internal')).toBe(false);
  });

  it('a connection no longer registered (expired) gets a not_found frame on subscribe, unsubscribe and publish', async () => {
    const connectionId = `never-registered-${randomUUID()}`;
    for (const frame of [
      { action: 'subscribe', channel: 'a' },
      { action: 'unsubscribe', channel: 'a' },
      { action: 'publish', channel: 'a', message: 1 },
    ]) {
      await send(connectionId, frame);
      expect(lastFrame(connectionId)).toEqual({
        type: 'error',
        code: 'not_found',
        message: expect.stringContaining('reconnect'),
      });
    }
    expect(await storage().events.history('a')).toEqual([]);

    const expiring = `conn-${randomUUID()}`;
    await storage().connections.register({
      connectionId: expiring,
      identity: 'short',
      tokenId: `t-${expiring}`,
      scopes: ['admin'],
      resources: ['*'],
      ttl: 0.2,
    });
    await new Promise((resolve) => setTimeout(resolve, 400));
    await send(expiring, { action: 'subscribe', channel: 'a' });
    expect(lastFrame(expiring)).toMatchObject({ type: 'error', code: 'not_found' });
  });

  it('a stale connection (410) is removed with its subscriptions on the next publish; the sender is kept', async () => {
    const channel = `stale-${randomUUID()}`;
    const sender = await open(storage());
    const stale = await open(storage());
    const live = await open(storage());
    for (const id of [sender, stale, live]) await send(id, { action: 'subscribe', channel });
    await send(stale, { action: 'subscribe', channel: `${channel}-second` });
    // The sender's post answers 410 too (a race API Gateway can show): it must not be removed.
    stub.gone.add(stale);
    stub.gone.add(sender);

    await send(sender, { action: 'publish', channel, message: 'first' });

    expect(await storage().connections.get(stale)).toBeUndefined();
    expect((await storage().connections.subscribers(`${channel}-second`)).connectionIds).toEqual([]);
    expect((await storage().connections.subscribers(channel)).connectionIds.sort()).toEqual(
      [live, sender].sort(),
    );
    expect(await storage().connections.get(sender)).toMatchObject({ channels: [channel] });
    expect(lastFrame(live)).toMatchObject({ type: 'message', channel, message: 'first' });

    // And on an HTTP publish, which has no sender.
    stub.gone.delete(sender);
    stub.gone.add(live);
    const admin = await storage().tokens.issue({ identity: 'publisher', scopes: ['admin'] });
    await call('POST /channels/{channel}/messages', {
      params: { channel },
      token: admin.token,
      body: { message: 2 },
    });
    expect(await storage().connections.get(live)).toBeUndefined();
    expect((await storage().connections.subscribers(channel)).connectionIds).toEqual([sender]);
    expect(lastFrame(sender)).toMatchObject({ type: 'message', channel, message: 2 });
  });

  // ---------------------------------------------------------------------------------------
  // the token, again on every frame; revocation and expiry close connections

  const UNAUTHORIZED = {
    type: 'error',
    code: 'unauthorized',
    message: expect.stringMatching(/unknown, expired or revoked.*closed/),
  };

  it('every frame looks the token up again: once revoked, a frame gets 401 and the connection is closed and forgotten', async () => {
    const channel = `revoked-${randomUUID()}`;
    const issued = await storage().tokens.issue({
      identity: 'agent',
      scopes: ['events:subscribe', 'events:publish'],
    });
    const { connectionId } = await connectWith(issued.token);
    const other = await open(storage(), { scopes: ['events:subscribe'] });
    await send(connectionId, { action: 'subscribe', channel });
    await send(other, { action: 'subscribe', channel });
    expect(lastFrame(connectionId)).toEqual({ type: 'subscribed', channel });

    // Revoked in the store (not through the route, which closes connections itself).
    expect(await storage().tokens.revoke(issued.id)).toEqual([issued.id]);
    for (const frame of [
      { action: 'publish', channel, message: 'after revoke' },
      { action: 'subscribe', channel: `${channel}-2` },
      { action: 'unsubscribe', channel },
    ]) {
      stub.reset();
      await send(connectionId, frame);
      if (frame.action === 'publish') {
        expect(framesOf(connectionId)).toEqual([UNAUTHORIZED]);
        expect(stub.closed).toEqual([connectionId]);
      } else {
        // Closed already: no longer registered.
        expect(framesOf(connectionId)).toEqual([
          { type: 'error', code: 'not_found', message: expect.any(String) },
        ]);
      }
    }
    expect(await storage().events.history(channel)).toEqual([]);
    expect(await storage().connections.get(connectionId)).toBeUndefined();
    expect((await storage().connections.subscribers(channel)).connectionIds).toEqual([other]);
    expect(await storage().connections.get(other)).toBeDefined();
  });

  it('an expired token: the next frame gets 401 and the connection is closed and forgotten', async () => {
    const channel = `expired-${randomUUID()}`;
    const issued = await storage().tokens.issue({ identity: 'agent', scopes: ['events:subscribe'], ttl: 1 });
    const { connectionId } = await connectWith(issued.token);
    await send(connectionId, { action: 'subscribe', channel });
    expect(lastFrame(connectionId)).toEqual({ type: 'subscribed', channel });
    await sleep(Math.max(0, Date.parse(issued.expiresAt!) - Date.now()) + 100);

    await send(connectionId, { action: 'subscribe', channel: `${channel}-2` });
    expect(lastFrame(connectionId)).toEqual(UNAUTHORIZED);
    expect(stub.closed).toEqual([connectionId]);
    expect(await storage().connections.get(connectionId)).toBeUndefined();
    expect((await storage().connections.subscribers(channel)).connectionIds).toEqual([]);
  });

  it('DELETE /tokens/{id} closes every open connection of the token at once; nothing more reaches them', async () => {
    const channel = `revoke-route-${randomUUID()}`;
    const issued = await storage().tokens.issue({ identity: 'agent', scopes: ['events:subscribe'] });
    const victims = [
      (await connectWith(issued.token)).connectionId,
      (await connectWith(issued.token)).connectionId,
    ];
    const bystander = await open(storage(), { scopes: ['events:subscribe'] });
    for (const id of [...victims, bystander]) await send(id, { action: 'subscribe', channel });
    const admin = await storage().tokens.issue({ identity: 'admin', scopes: ['admin'] });
    stub.reset();

    const revoked = await call('DELETE /tokens/{id}', { params: { id: issued.id }, token: admin.token });
    expect(revoked.status).toBe(204);
    expect([...stub.closed].sort()).toEqual([...victims].sort());
    for (const id of victims) {
      expect(framesOf(id)).toEqual([UNAUTHORIZED]);
      expect(await storage().connections.get(id)).toBeUndefined();
    }
    expect((await storage().connections.byToken(issued.id)).connectionIds).toEqual([]);
    expect((await storage().connections.subscribers(channel)).connectionIds).toEqual([bystander]);

    const published = await call('POST /channels/{channel}/messages', {
      params: { channel },
      token: admin.token,
      body: { message: 'after revoke' },
    });
    expect(published.status).toBe(202);
    for (const id of victims) expect(framesOf(id)).toEqual([UNAUTHORIZED]);
    expect(lastFrame(bystander)).toMatchObject({ type: 'message', message: 'after revoke' });
  });

  it('revoking a token closes the connections of the tokens it issued too', async () => {
    const parent = await storage().tokens.issue({ identity: 'team', scopes: ['admin'] });
    const child = await storage().tokens.issue({
      identity: 'agent',
      scopes: ['events:subscribe'],
      issuerId: parent.id,
    });
    const parentConnection = (await connectWith(parent.token)).connectionId;
    const childConnection = (await connectWith(child.token)).connectionId;
    const admin = await storage().tokens.issue({ identity: 'admin', scopes: ['admin'] });
    stub.reset();

    const revoked = await call('DELETE /tokens/{id}', { params: { id: parent.id }, token: admin.token });
    expect(revoked.status).toBe(204);
    expect([...stub.closed].sort()).toEqual([parentConnection, childConnection].sort());
    expect(await storage().connections.get(childConnection)).toBeUndefined();
  });

  it('the cleanup closes and forgets connections whose token expired, and no others', async () => {
    const channel = `cleanup-${randomUUID()}`;
    const short = await storage().tokens.issue({ identity: 'agent', scopes: ['events:subscribe'], ttl: 1 });
    const expiring = (await connectWith(short.token)).connectionId;
    const kept = await open(storage(), { scopes: ['events:subscribe'], ttl: 600 });
    const forever = await open(storage(), { scopes: ['events:subscribe'] });
    for (const id of [expiring, kept, forever]) await send(id, { action: 'subscribe', channel });
    await sleep(Math.max(0, Date.parse(short.expiresAt!) - Date.now()) + 100);
    stub.reset();

    const result = await cleanup({}, lambdaContext('cleanup'));
    expect(result.closedConnections).toBeGreaterThanOrEqual(1);
    expect(stub.closed).toContain(expiring);
    expect(stub.closed).not.toContain(kept);
    expect(stub.closed).not.toContain(forever);
    expect(framesOf(expiring)).toEqual([UNAUTHORIZED]);
    expect(await storage().connections.get(expiring)).toBeUndefined();
    expect((await storage().connections.subscribers(channel)).connectionIds.sort()).toEqual(
      [kept, forever].sort(),
    );
    // A second run finds nothing more of it.
    stub.reset();
    await cleanup({}, lambdaContext('cleanup'));
    expect(stub.closed).not.toContain(expiring);
  });
});

it('authorizer: a backend that cannot be reached denies, logged as an error, and never throws', async () => {
  const down = createStorage({
    backend: 'redis',
    redis: { url: 'redis://127.0.0.1:1', connectTimeout: 0.3, commandTimeout: 0.5, maxRetriesPerRequest: 0 },
  });
  useStorage(down);
  const errors = vi.spyOn(logger, 'error');
  try {
    const result = await authorize({ token: 'kst_whatever' });
    expect(effect(result)).toBe('Deny');
    expect(errors).toHaveBeenCalledWith(
      'connection refused: the token could not be checked',
      expect.anything(),
    );

    // The frame routes answer an unavailable frame, without driver detail.
    await send('conn-down', { action: 'subscribe', channel: 'a' });
    expect(lastFrame('conn-down')).toEqual({
      type: 'error',
      code: 'unavailable',
      message: expect.any(String),
    });
    expect(JSON.stringify(lastFrame('conn-down'))).not.toMatch(/127\.0\.0\.1|ECONNREFUSED/);
    // $connect refuses the connection with a 5xx rather than registering nothing silently.
    const connect = await ws.connect(
      wsEvent('conn-down', '$connect', {
        requestContext: {
          connectionId: 'conn-down',
          authorizer: {
            principalId: 'x',
            identity: 'x',
            tokenId: 't',
            tokenExpiresAt: '',
            scopes: 'admin',
            resources: '["*"]',
          },
        },
      }),
      lambdaContext('wsConnect'),
    );
    expect(connect.statusCode).toBe(503);
  } finally {
    await down.close();
  }
});
