/**
 * The WebSocket keep-alive and the token in `Sec-WebSocket-Protocol`: `{"action":"ping"}` is
 * answered `{"type":"pong"}`; the `$connect` authorizer takes the token offered as a subprotocol
 * when the query string has none, and `$connect` answers with one of the offered protocols
 * (`kubently` when offered, else the token), as a client requires.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { WebSocketEvent } from '../../functions/ws.js';
import { createStorage } from '../../lib/storage/index.js';
import { relayEnv, startAwsStub } from '../support/aws-stub.js';
import { lambdaContext } from '../support/lambda.js';

process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const stub = await startAwsStub();
const saved = { ...process.env };
Object.assign(process.env, relayEnv(stub));
delete process.env.IS_OFFLINE;

const { handler: authorizer } = await import('../../functions/authorizer.js');
const ws = await import('../../functions/ws.js');
const { useStorage } = await import('../../functions/runtime/storage.js');

const storage = createStorage({ backend: 'memory' });
useStorage(storage);

afterAll(async () => {
  await storage.close();
  await stub.close();
  process.env = saved;
});
beforeEach(() => stub.reset());

function authorizerEvent(
  headers: Record<string, string>,
  query?: Record<string, string>,
): APIGatewayRequestAuthorizerEvent {
  return {
    type: 'REQUEST',
    methodArn: 'arn:aws:execute-api:us-east-1:123456789012:abc123/prod/$connect',
    resource: '$connect',
    path: '',
    httpMethod: 'GET',
    headers: { host: 'abc123.execute-api.us-east-1.amazonaws.com', ...headers },
    multiValueHeaders: null,
    pathParameters: null,
    queryStringParameters: query ?? null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    requestContext: { routeKey: '$connect', connectionId: randomUUID(), requestId: randomUUID() } as never,
  };
}

const effect = (result: Awaited<ReturnType<typeof authorizer>>) =>
  (result.policyDocument.Statement[0] as { Effect: string }).Effect;

/** The authorizer, then `$connect` with its context and `headers`, as API Gateway runs them. */
async function connect(headers: Record<string, string>, query?: Record<string, string>) {
  const result = await authorizer(authorizerEvent(headers, query), lambdaContext('wsAuthorizer'));
  expect(effect(result)).toBe('Allow');
  const connectionId = `conn-${randomUUID()}`;
  const event: WebSocketEvent = {
    requestContext: {
      connectionId,
      routeKey: '$connect',
      eventType: 'CONNECT',
      requestId: randomUUID(),
      authorizer: { principalId: result.principalId, ...result.context },
    },
    headers,
  };
  return { connectionId, response: await ws.connect(event, lambdaContext('wsConnect')) };
}

async function send(connectionId: string, body: string) {
  const event: WebSocketEvent = {
    requestContext: { connectionId, routeKey: '$default', eventType: 'MESSAGE', requestId: randomUUID() },
    body,
    isBase64Encoded: false,
  };
  expect((await ws.message(event, lambdaContext('wsDefault'))).statusCode).toBe(200);
}

describe('the token in Sec-WebSocket-Protocol', () => {
  it('is accepted alone, and $connect answers with it', async () => {
    const { token } = await storage.tokens.issue({ identity: 'browser', scopes: ['events:subscribe'] });
    const { response } = await connect({ 'Sec-WebSocket-Protocol': token });
    expect(response).toEqual({ statusCode: 200, headers: { 'Sec-WebSocket-Protocol': token } });
  });

  it('is accepted after `kubently`, and $connect answers `kubently` (the token is not sent back)', async () => {
    const { token } = await storage.tokens.issue({ identity: 'browser', scopes: ['events:subscribe'] });
    const { response } = await connect({ 'sec-websocket-protocol': `kubently, ${token}` });
    expect(response).toEqual({ statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'kubently' } });
  });

  it('an unknown token there is denied, and the query string still works without the header', async () => {
    const denied = await authorizer(
      authorizerEvent({ 'Sec-WebSocket-Protocol': 'kubently, kbs_unknown' }),
      lambdaContext('wsAuthorizer'),
    );
    expect(effect(denied)).toBe('Deny');
    const { token } = await storage.tokens.issue({ identity: 'agent', scopes: ['events:subscribe'] });
    // No protocol offered: none answered.
    const { response } = await connect({}, { token });
    expect(response).toEqual({ statusCode: 200 });
  });
});

describe('ping', () => {
  it('is answered with pong, on the connection that sent it, and with no other field allowed', async () => {
    const { token } = await storage.tokens.issue({ identity: 'agent', scopes: ['events:subscribe'] });
    const { connectionId } = await connect({ 'Sec-WebSocket-Protocol': token });
    await send(connectionId, '{"action":"ping"}');
    expect(stub.framesFor(connectionId)).toEqual([{ type: 'pong' }]);
    await send(connectionId, '{"action":"ping","channel":"x"}');
    expect(stub.framesFor(connectionId)[1]).toMatchObject({
      type: 'error',
      code: 'bad_request',
      message: expect.stringContaining('unknown field "channel" in a ping frame'),
    });
    await send(connectionId, '{"action":"pong"}');
    expect(stub.framesFor(connectionId)[2]).toMatchObject({
      type: 'error',
      message:
        'action: expected "subscribe", "unsubscribe", "publish", "ping", "receive", "ack", "nack", "extend" ' +
        'or "stop", got "pong"',
    });
  });
});
