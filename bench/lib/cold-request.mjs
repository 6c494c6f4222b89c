/**
 * Runs in a fresh `node` process (spawned by bench/suites/cold-request.ts) inside an extracted
 * function zip: the first request of a cold container, in parts. It imports the bundled handler,
 * invokes it once with an API Gateway event, and watches the sockets the handler opens
 * (`net.Socket`'s connect and write) to split the request at the wire:
 *
 *   before connect  handler called → first socket connecting (middleware, configuration, storage built)
 *   connect         first socket connecting → first query bytes written (TCP, WebSocket upgrade for
 *                   Neon, startup and authentication for PostgreSQL, ioredis' ready check)
 *   first query     first query bytes written → the handler's response (every statement of the
 *                   request and the handler's work after them)
 *
 * Prints one line `RESULT <json>`.
 *
 * argv: <handler .mjs path> <export> <request: kv | publish | ws-connect> <wire: pg | neon | redis>
 * env: BENCH_TOKEN, the token whose SHA-256 is BOOTSTRAP_TOKEN_HASH; BENCH_ID, unique per run.
 */
import { randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { isQueryWrite } from './wire.mjs';

const [file, exportName, request, wire] = process.argv.slice(2);
/** When each client socket was connected, in order. */
const sockets = [];
const states = new WeakMap();
let firstQueryAt;

// Every client socket goes through these (pg makes its own `net.Socket`, ioredis and ws call
// `net.connect`): the first connect of the request and its first query write are noted.
const connect = Socket.prototype.connect;
Socket.prototype.connect = function (...args) {
  if (!states.has(this)) {
    states.set(this, { written: 0 });
    sockets.push(performance.now());
  }
  return connect.apply(this, args);
};
const write = Socket.prototype.write;
Socket.prototype.write = function (chunk, ...rest) {
  const state = states.get(this);
  if (state && firstQueryAt === undefined && chunk && typeof chunk !== 'function') {
    const bytes =
      typeof chunk === 'string'
        ? Buffer.from(chunk)
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (isQueryWrite(wire, bytes, state)) firstQueryAt = performance.now();
  }
  return write.call(this, chunk, ...rest);
};

const id = process.env.BENCH_ID ?? randomUUID();

function httpEvent(method, route, pathParameters, body) {
  const path = Object.entries(pathParameters).reduce(
    (p, [name, value]) => p.replace(`{${name}}`, encodeURIComponent(value)),
    route,
  );
  const now = Date.now();
  return {
    version: '2.0',
    routeKey: `${method} ${route}`,
    rawPath: path,
    rawQueryString: '',
    headers: {
      host: 'api.example.com',
      authorization: `Bearer ${process.env.BENCH_TOKEN}`,
      'content-type': 'application/json',
      'user-agent': 'bench',
    },
    pathParameters,
    body: JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'bench',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' },
      requestId: randomUUID(),
      routeKey: `${method} ${route}`,
      stage: '$default',
      time: new Date(now).toISOString(),
      timeEpoch: now,
    },
  };
}

/** `$connect` as API Gateway delivers it after the authorizer accepted the token. */
function connectEvent() {
  return {
    requestContext: {
      connectionId: `bench-${id}`,
      routeKey: '$connect',
      eventType: 'CONNECT',
      requestId: randomUUID(),
      domainName: 'ws.example.com',
      stage: 'prod',
      authorizer: {
        principalId: 'bench',
        identity: 'bench',
        // One token per run: the per-token connection limit never refuses a later run.
        tokenId: `bench-${id}`,
        tokenExpiresAt: '',
        scopes: 'admin',
        resources: '["*"]',
      },
    },
    headers: {},
  };
}

const EVENTS = {
  kv: () => httpEvent('PUT', '/kv/{key}', { key: 'bench-cold' }, { value: { cluster: 'prod', pods: 42 } }),
  publish: () =>
    httpEvent('POST', '/channels/{channel}/messages', { channel: 'bench-cold' }, { message: { pods: 42 } }),
  'ws-connect': connectEvent,
};

function context() {
  const deadline = Date.now() + 10_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'bench',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:bench',
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/bench',
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
}

const importStart = performance.now();
const handler = (await import(pathToFileURL(file).href))[exportName];
const event = EVENTS[request]();
const calledAt = performance.now();
const response = await handler(event, context());
const doneAt = performance.now();
if (!response || response.statusCode >= 300)
  throw new Error(`${request}: ${response?.statusCode} ${response?.body ?? ''}`);
// Sockets opened by the import itself (none today) are not the request's.
const openedAt = sockets.find((at) => at >= calledAt);
if (openedAt === undefined || firstQueryAt === undefined)
  throw new Error(`${request}: no ${wire} query seen on the wire (${sockets.length} socket(s))`);
process.stdout.write(
  `\nRESULT ${JSON.stringify({
    importMs: calledAt - importStart,
    beforeConnectMs: openedAt - calledAt,
    connectMs: firstQueryAt - openedAt,
    firstQueryMs: doneAt - firstQueryAt,
    requestMs: doneAt - calledAt,
    processMs: doneAt,
    sockets: sockets.length,
  })}\n`,
);
// The storage keeps its connections open, as a warm container would.
process.exit(0);
