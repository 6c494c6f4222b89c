/**
 * The hostile-input corpus (cases.ts) against one `npm start`: serverless-offline on the embedded
 * database, exactly as a developer runs it. For every case: the exact status (or WebSocket
 * refusal) and error code, docs/api.md's error body `{"error":{"code","message"}}` and nothing else,
 * no stack trace or driver text anywhere in the answer, and nothing written — every table of
 * the store (read over the embedded database's socket) is the same before and after.
 *
 * Cases marked `needs` wait for a change made elsewhere; they run like the others, and the
 * summary printed at the end lists them.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { routeKey, routes } from '../../../functions/runtime/routes.js';
import { freePorts, type Offline, startOffline } from '../../support/servers/offline.js';
import { WsClient } from '../../support/ws-client.js';
import {
  type As,
  CASES,
  type Case,
  type Fixtures,
  type HttpCase,
  SEEDED,
  TOKEN_SPECS,
  type TokenName,
  type WsCase,
} from './cases.js';

/** Bundling, starting and warming every function: ceilings on a shared 2-core machine, not expectations. */
const STARTUP_TIMEOUT_MS = 150_000;
const WARM_UP_TIMEOUT_MS = 180_000;
const REPLY_TIMEOUT_MS = 20_000;
/** The store's tables; every one must read the same after a refused case. */
const TABLES = [
  'kv_store',
  'sessions',
  'queues',
  'queue_dedup',
  'event_channels',
  'events',
  'tokens',
  'audit_log',
  'ws_connections',
  'ws_subscriptions',
];
// A stack frame, a Node error class, serverless-offline's Lambda-failure body, or driver text.
const LEAK =
  /\n\s*at |\bat \S+:\d+:\d+|\.ts:\d+|\.mjs|node_modules|Error:|errorType|stackTrace|ECONN|SQLSTATE|syntax error at|relation "|kubently\./;

let offline: Offline;
let db: pg.Client;
let fixtures: Fixtures;
const garbageToken = `kbs_${randomBytes(32).toString('base64url')}`;
const sockets = new Map<string, WsClient>();
const results: { c: Case; passed: boolean }[] = [];

beforeAll(
  async () => {
    const [pgPort] = await freePorts(1);
    offline = await startOffline({
      // `npm start` with nothing configured: the embedded PostgreSQL, on a port the test can read.
      env: {
        STORAGE_BACKEND: '',
        POSTGRES_DRIVER: '',
        DATABASE_URL: '',
        REDIS_URL: '',
        BOOTSTRAP_TOKEN_HASH: '',
        KUBENTLY_ADMIN_TOKEN: '',
        KUBENTLY_PG_PORT: String(pgPort),
      },
      timeoutMs: STARTUP_TIMEOUT_MS,
    });
    db = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${pgPort}/postgres` });
    await db.connect();
    await warmUp();
    fixtures = await createFixtures();
  },
  STARTUP_TIMEOUT_MS + WARM_UP_TIMEOUT_MS + 60_000,
);

afterAll(async () => {
  for (const client of sockets.values()) client.socket.terminate();
  await db?.end().catch(() => {});
  await offline?.stop();
  printSummary();
}, 60_000);

describe('hostile input over serverless offline (npm start, embedded database)', () => {
  it('the corpus: at least 300 cases, uniquely named, on every route and on the WebSocket', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(300);
    expect(new Set(CASES.map(title)).size).toBe(CASES.length);
    const covered = new Set(CASES.filter((c) => c.kind === 'http').map((c) => routeOf(c as HttpCase)));
    const missing = routes.map(routeKey).filter((key) => key !== 'GET /health' && !covered.has(key));
    expect(missing).toEqual([]);
    expect(CASES.filter((c) => c.kind === 'ws').length).toBeGreaterThanOrEqual(40);
  });

  for (const c of CASES) {
    it(title(c), async () => {
      let passed = false;
      try {
        if (c.kind === 'http') await runHttp(c);
        else await runWs(c);
        passed = true;
      } finally {
        results.push({ c, passed });
      }
    });
  }
});

function title(c: Case): string {
  const outcome =
    'gateway' in c.expect
      ? `${c.expect.status} (gateway)`
      : 'refused' in c.expect
        ? `refused ${c.expect.refused}`
        : 'status' in c.expect
          ? `${c.expect.status} ${c.expect.code}`
          : 'closedByServer' in c.expect
            ? 'closed by the server'
            : `error frame ${c.expect.code}${c.expect.closes ? ', closed' : ''}`;
  return `${c.group} › ${c.name} → ${outcome}${c.needs ? ` [needs ${c.needs}]` : ''}`;
}

/** The routes-table key a case's method and path land on (for coverage), or `unrouted`. */
function routeOf(c: HttpCase): string {
  const path = (typeof c.path === 'string' ? c.path : c.path(placeholderFixtures())).split('?')[0]!;
  const segments = path.split('/');
  const match = routes.find(
    (route) =>
      route.method === c.method &&
      route.path.split('/').length === segments.length &&
      route.path.split('/').every((part, i) => part.startsWith('{') || part === segments[i]),
  );
  return match ? routeKey(match) : 'unrouted';
}

function placeholderFixtures(): Fixtures {
  const names = Object.keys(TOKEN_SPECS) as TokenName[];
  const byName = Object.fromEntries(names.map((name) => [name, name])) as Record<TokenName, string>;
  return { token: byName, tokenId: byName, sessionA: 's', sessionB: 's', leasedB: { id: 'm', receipt: 'r' } };
}

const resolve = <T>(value: T | ((f: Fixtures) => T)): T =>
  typeof value === 'function' ? (value as (f: Fixtures) => T)(fixtures) : value;

// ---------------------------------------------------------------------------------------
// HTTP

async function runHttp(c: HttpCase): Promise<void> {
  const headers: [string, string][] = [];
  const token = tokenFor(c.as ?? 'admin');
  if (token !== undefined) headers.push(['authorization', `Bearer ${token}`]);
  const body = c.body === undefined ? undefined : encodeBody(resolve(c.body));
  if (body !== undefined && c.contentType !== null)
    headers.push(['content-type', c.contentType ?? 'application/json']);
  headers.push(...(c.headers ? resolve(c.headers) : []));

  const before = await snapshot();
  const response = await send(c.method, resolve(c.path), headers, body);
  const after = await snapshot();

  const shown = response.text.slice(0, 400);
  expect(response.status, shown).toBe(c.expect.status);
  expect(response.text, 'no stack trace or driver text').not.toMatch(LEAK);
  if ('code' in c.expect) {
    expect(String(response.headers['content-type'])).toMatch(/^application\/json\b/);
    const json = JSON.parse(response.text);
    expect(json, shown).toStrictEqual({ error: { code: c.expect.code, message: expect.any(String) } });
    expect(json.error.message.trim(), 'a message saying what is wrong').not.toBe('');
    if (c.expect.allow !== undefined) expect(response.headers.allow).toBe(c.expect.allow);
  }
  expect(changedTables(before, after), 'nothing written').toEqual([]);
}

function tokenFor(as: As): string | undefined {
  if (as === 'none') return undefined;
  if (as === 'admin') return offline.adminToken;
  if (as === 'garbage') return garbageToken;
  return fixtures.token[as];
}

function encodeBody(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8');
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One request with the target and headers exactly as given (node:http, no URL normalisation). */
function send(
  method: string,
  target: string,
  headers: [string, string][],
  body?: Buffer,
): Promise<RawResponse> {
  const { hostname, port, host } = new URL(offline.baseUrl);
  const raw = [
    'host',
    host,
    'connection',
    'close',
    ...(body === undefined ? [] : ['content-length', String(body.length)]),
    ...headers.flat(),
  ];
  return new Promise((done, fail) => {
    let answered = false;
    const req = request({ hostname, port, method, path: target, headers: raw, timeout: 60_000 }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        done({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', fail);
    });
    // A server refusing a large body may answer and close before it is all sent.
    req.on('error', (error) => {
      if (!answered) fail(error);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${target.slice(0, 80)}: no answer`)));
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------
// WebSocket

async function runWs(c: WsCase): Promise<void> {
  if ('refused' in c.expect) {
    const before = await snapshot();
    const status = await WsClient.refusal(
      connectUrl(c),
      c.connect?.protocol ? resolve(c.connect.protocol) : undefined,
    );
    expect(status).toBe(c.expect.refused);
    expect(changedTables(before, await snapshot()), 'nothing written').toEqual([]);
    return;
  }
  const client = c.meanwhile ? await ownConnection(c) : await sharedConnection(c.as);
  client.drain();
  const before = await snapshot();
  if ('closedByServer' in c.expect) {
    await client.closed(REPLY_TIMEOUT_MS);
    await settled();
    expect(
      changedTables(before, await snapshot()).filter((table) => !WS_TABLES.includes(table)),
      'nothing written',
    ).toEqual([]);
    return;
  }
  client.send(resolve(c.frame!));
  const reply = await client.next();
  expect(JSON.stringify(reply), 'no stack trace or driver text').not.toMatch(LEAK);
  expect(reply).toStrictEqual({
    type: 'error',
    code: c.expect.code,
    message: expect.any(String),
    ...c.expect.echo,
  });
  expect(String(reply.message).trim()).not.toBe('');
  if (c.expect.closes) {
    await client.closed(REPLY_TIMEOUT_MS);
    // The $disconnect that follows removes the registration: wait for it, so later cases see a quiet store.
    await settled();
  }
  const allowed = c.expect.closes ? WS_TABLES : [];
  expect(
    changedTables(before, await snapshot()).filter((table) => !allowed.includes(table)),
    'nothing written',
  ).toEqual([]);
}

function connectUrl(c: WsCase): string {
  if (c.connect?.query !== undefined) return `${offline.wsUrl}${resolve(c.connect.query)}`;
  if (c.connect?.protocol !== undefined) return offline.wsUrl;
  const token = tokenFor(c.as);
  return token === undefined ? offline.wsUrl : `${offline.wsUrl}?token=${encodeURIComponent(token)}`;
}

/** One open connection per principal, reused by every case that only sends a frame. */
async function sharedConnection(as: As): Promise<WsClient> {
  let client = sockets.get(as);
  if (!client || client.socket.readyState !== WebSocket.OPEN) {
    client = await untilOk(() =>
      WsClient.open(`${offline.wsUrl}?token=${encodeURIComponent(tokenFor(as)!)}`),
    );
    sockets.set(as, client);
  }
  return client;
}

/** A connection on a token of its own, which is then revoked or left to expire. */
async function ownConnection(c: WsCase): Promise<WsClient> {
  const spec = TOKEN_SPECS[c.as as TokenName];
  const ttl = c.meanwhile === 'expire' ? 2 : undefined;
  const issued = await api('POST', '/tokens', {
    identity: `hx-own-${c.meanwhile}`,
    ...spec,
    ...(ttl ? { ttl } : {}),
  });
  expect(issued.status, JSON.stringify(issued.json)).toBe(201);
  const client = await WsClient.open(`${offline.wsUrl}?token=${encodeURIComponent(issued.json.token)}`);
  sockets.set(`own-${randomBytes(4).toString('hex')}`, client);
  if (c.meanwhile === 'revoke') {
    expect((await api('DELETE', `/tokens/${issued.json.id}`)).status).toBe(204);
  } else {
    await sleep(Date.parse(issued.json.expiresAt) - Date.now() + 200);
  }
  return client;
}

// ---------------------------------------------------------------------------------------
// the store

type Snapshot = Record<string, string>;

/** The registry's tables: a connection the server closes leaves them through its $disconnect. */
const WS_TABLES = ['ws_connections', 'ws_subscriptions'];

/**
 * Each table's row count and digest. Tokens count while live: an expired token's row may be
 * swept away at any time, which is no write of the case under test.
 */
async function snapshot(): Promise<Snapshot> {
  const text = TABLES.map(
    (table) =>
      `SELECT '${table}' AS name, count(*) || ':' || md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) AS digest FROM kubently.${table} r${table === 'tokens' ? ' WHERE r.expires_at IS NULL OR r.expires_at > now()' : ''}`,
  ).join(' UNION ALL ');
  const { rows } = await db.query<{ name: string; digest: string }>(text);
  return Object.fromEntries(rows.map((row) => [row.name, row.digest]));
}

function changedTables(before: Snapshot, after: Snapshot): string[] {
  return TABLES.filter((table) => before[table] !== after[table]);
}

/** Waits until the store stops changing (a connection's $disconnect runs after its socket closed). */
async function settled(): Promise<void> {
  let last = JSON.stringify(await snapshot());
  const deadline = Date.now() + REPLY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    await sleep(500);
    const now = JSON.stringify(await snapshot());
    if (now === last) return;
    last = now;
  }
}

// ---------------------------------------------------------------------------------------
// starting: warm functions and the data the cases refer to

async function api(method: string, path: string, body?: unknown) {
  const response = await send(
    method,
    path,
    [
      ['authorization', `Bearer ${offline.adminToken}`],
      ['content-type', 'application/json'],
    ],
    body === undefined ? undefined : encodeBody(body),
  );
  return { status: response.status, json: response.text ? JSON.parse(response.text) : undefined };
}

/**
 * Each function's first invocation loads its bundle in a new worker, which on a loaded machine
 * can outlast offline's 10 s Lambda timeout: every function is called until it answers.
 */
async function warmUp(): Promise<void> {
  const calls: [string, string, number][] = [
    ['GET', '/health', 200],
    ['GET', '/kv/hx-warm', 404],
    ['GET', '/clusters/active', 200],
    ['GET', '/queues/hx-warm', 200],
    ['GET', '/channels/hx-warm/messages', 200],
    ['GET', '/tokens', 200],
    ['GET', '/hx-warm', 404],
  ];
  await Promise.all(
    calls.map(([method, path, status]) =>
      untilOk(async () => {
        const response = await api(method, path);
        if (response.status !== status) throw new Error(`${method} ${path} answered ${response.status}`);
      }),
    ),
  );
  // The authorizer, $connect, $default and $disconnect.
  await untilOk(async () => {
    const client = await WsClient.open(`${offline.wsUrl}?token=${encodeURIComponent(offline.adminToken)}`);
    try {
      client.send({ action: 'subscribe', channel: 'hx-warm' });
      await client.next();
    } finally {
      client.socket.close();
      await client.closed(REPLY_TIMEOUT_MS);
    }
  });
  await untilOk(async () => {
    expect(await WsClient.refusal(`${offline.wsUrl}?token=${garbageToken}`)).toBe(403);
  });
  await settled();
}

async function createFixtures(): Promise<Fixtures> {
  const token = {} as Record<TokenName, string>;
  const tokenId = {} as Record<TokenName, string>;
  let expiresAt = 0;
  for (const [name, spec] of Object.entries(TOKEN_SPECS) as [TokenName, (typeof TOKEN_SPECS)[TokenName]][]) {
    const issued = await api('POST', '/tokens', { identity: `hx-${name}`, ...spec });
    expect(issued.status, JSON.stringify(issued.json)).toBe(201);
    token[name] = issued.json.token;
    tokenId[name] = issued.json.id;
    if (spec.ttl) expiresAt = Math.max(expiresAt, Date.parse(issued.json.expiresAt));
  }
  expect((await api('DELETE', `/tokens/${tokenId.revoked}`)).status).toBe(204);

  for (const [key, value] of Object.entries(SEEDED.kv)) {
    expect((await api('PUT', `/kv/${key}`, { value })).status).toBe(200);
  }
  const sessionA = await api('POST', '/sessions', { clusterId: 'team-a-cluster', ttl: 3600 });
  const sessionB = await api('POST', '/sessions', { clusterId: 'team-b-cluster', ttl: 3600 });
  expect([sessionA.status, sessionB.status]).toEqual([201, 201]);
  for (const queue of SEEDED.queues) {
    expect((await api('POST', `/queues/${queue}/messages`, { payload: { queue } })).status).toBe(201);
  }
  const leased = await api('POST', '/queues/team-b-jobs/receive', { visibilityTimeout: 3600 });
  expect(leased.json.messages, JSON.stringify(leased.json)).toHaveLength(1);
  for (const channel of SEEDED.channels) {
    expect((await api('POST', `/channels/${channel}/messages`, { message: { channel } })).status).toBe(202);
  }
  await sleep(expiresAt - Date.now() + 200);
  return {
    token,
    tokenId,
    sessionA: sessionA.json.sessionId,
    sessionB: sessionB.json.sessionId,
    leasedB: { id: leased.json.messages[0].id, receipt: leased.json.messages[0].receipt },
  };
}

function printSummary(): void {
  const count = (of: (c: Case) => string) => {
    const counts = new Map<string, number>();
    for (const c of CASES) counts.set(of(c), (counts.get(of(c)) ?? 0) + 1);
    return [...counts].map(([name, n]) => `${name} ${n}`).join(', ');
  };
  const failed = results.filter((r) => !r.passed);
  const waiting = CASES.filter((c) => c.needs);
  console.info(
    [
      `hostile-input corpus: ${CASES.length} cases (${CASES.filter((c) => c.kind === 'http').length} HTTP, ${CASES.filter((c) => c.kind === 'ws').length} WebSocket)`,
      `  by group: ${count((c) => c.group)}`,
      `  by attack: ${count((c) => c.attack)}`,
      `  waiting on other changes: ${waiting.map((c) => `${c.name} [${c.needs}]`).join('; ') || 'none'}`,
      `  failed this run: ${failed.length}${failed.length ? `\n    ${failed.map((r) => title(r.c)).join('\n    ')}` : ''}`,
    ].join('\n'),
  );
}

// ---------------------------------------------------------------------------------------
// helpers

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

async function untilOk<T>(attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + WARM_UP_TIMEOUT_MS;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(500);
    }
  }
}
