/**
 * Bad input on every HTTP route, through the real handlers on real Redis and real PostgreSQL:
 * each case of the table is one test asserting docs/api.md's 4xx status and error code (never a
 * 5xx), the exact error body without a stack trace or driver text, and — for writes — that
 * nothing was half-written (the state the route would change reads the same before and after).
 * A few cases are inputs that must be accepted (boundary names and sizes, unicode), asserted
 * the same way.
 *
 * An unreachable server fails the run under CI and is skipped loudly elsewhere (the pattern of
 * test/conformance/conformance.test.ts).
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { routeFor } from '../../functions/runtime/routes.js';
import { resolveConfig } from '../../lib/config/index.js';
import type { ErrorCode } from '../../lib/errors.js';
import type { Storage } from '../../lib/storage/types.js';
import { type Backend, installHint, postgresBackend, redisBackend } from '../support/backends.js';
import { type ApiResponse, type CallOptions, call, serveFrom } from './api-support.js';

const MAX_VALUE_BYTES = 256 * 1024;
/** A JSON string value whose JSON text is exactly `bytes` bytes (the two quotes included). */
const stringOfJsonBytes = (bytes: number) => 'x'.repeat(bytes - 2);
const EURO = '€'; // three bytes of UTF-8
const NAME_255 = 'n'.repeat(255);
const NAME_256 = 'n'.repeat(256);
const EURO_255 = EURO.repeat(85); // 255 bytes
const EURO_258 = EURO.repeat(86); // 258 bytes, 86 characters: under any character-count limit
const FIVE_MB_UNPARSEABLE = `{"value": "${'x'.repeat(5 * 1024 * 1024)}`; // not even valid JSON
const deeplyNested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

// A stack frame, a Node error class name, or text a driver would put in a message (key prefix
// or schema name of the test backends included).
const LEAK =
  /\n\s*at |\bat \S+:\d+:\d+|\.ts:\d+|node_modules|Error:|ECONN|ioredis|ReplyError|WRONGTYPE|SQLSTATE|syntax error|relation "|kst[_:]/;

type Request = Required<Pick<CallOptions, 'params'>> & Omit<CallOptions, 'params' | 'token'>;
type StateReader = (storage: Storage, request: Request) => Promise<unknown>;

interface Case {
  name: string;
  /** Route key, `PUT /kv/{key}`. */
  route: string;
  params?: Record<string, string>;
  query?: Record<string, string>;
  /** A value sent as JSON; a string is sent as it is (malformed JSON…). */
  body?: unknown;
  headers?: Record<string, string>;
  /** Writes what the case needs first; may answer path parameters or a body to use. */
  setup?: (storage: Storage) => Promise<{ params?: Record<string, string>; body?: unknown } | undefined>;
  /** Alters the API Gateway event before it is sent (base64 bodies, raw paths). */
  event?: (event: APIGatewayProxyEventV2) => void;
  /** The state a refused request must leave as it was (default: per route, see `routeState`). */
  state?: StateReader;
  expect: { status: number; code?: ErrorCode };
  /** What must hold after the request (for accepted inputs: what was written). */
  after?: (storage: Storage, response: ApiResponse) => Promise<void>;
}

/** Reads that throw (a bad name) are part of the state: the same refusal before and after. */
async function settle(read: () => Promise<unknown>): Promise<unknown> {
  try {
    return { value: await read() };
  } catch (error) {
    return { refused: (error as Error).constructor.name };
  }
}

/** What each write route changes, read back through the library. */
function routeState(route: string): StateReader | undefined {
  if (route.startsWith('GET ')) return undefined;
  // Whether the key expires, not when: Redis answers expiresAt as now + PTTL, which moves by a
  // millisecond or two between reads of an untouched key.
  if (route.includes('/kv/'))
    return (s, r) =>
      settle(async () => {
        const entry = await s.kv.getEntry(r.params.key!);
        return entry && { value: entry.value, expires: entry.expiresAt !== null };
      });
  if (route === 'POST /sessions') return async (s) => (await s.sessions.activeClusters()).sort();
  if (route.startsWith('POST /sessions/') || route === 'DELETE /sessions/{id}')
    return (s, r) => settle(() => s.sessions.get(r.params.id!));
  if (route.includes('/queues/')) return (s, r) => settle(() => s.queues.stats(r.params.queue!));
  if (route.includes('/channels/'))
    return (s, r) => settle(() => s.events.history(r.params.channel!, { limit: 1000 }));
  if (route.includes('/tokens')) return async (s) => (await s.tokens.list()).map((t) => t.id).sort();
  return undefined;
}

// ---------------------------------------------------------------------------------------
// setups

/** An existing key, without expiry unless `ttl`: a refused write must leave both as they were. */
const putOld =
  (key: string, value: unknown = 'old', ttl?: number) =>
  async (s: Storage) => {
    await s.kv.set(key, value as never, ttl === undefined ? undefined : { ttl });
    return undefined;
  };
const newSession = async (s: Storage) => ({
  params: { id: (await s.sessions.create({ clusterId: 'bi-keepalive', ttl: 600 })).sessionId },
});
const sendOne = (queue: string) => async (s: Storage) => {
  await s.queues.send(queue, { n: 1 });
  return undefined;
};
/** A message leased for a minute: its id, and the request body `body` builds from its receipt. */
const leased = (queue: string, body: (receipt: string) => unknown) => async (s: Storage) => {
  await s.queues.send(queue, { n: 1 });
  const [message] = await s.queues.receive(queue, { visibilityTimeout: 60 });
  if (!message) throw new Error(`setup: nothing received from ${queue}`);
  return { params: { queue, id: message.id }, body: body(message.receipt) };
};
/** A message whose first lease ended and which was delivered again: the first receipt is stale. */
const staleLease = (queue: string) => async (s: Storage) => {
  await s.queues.send(queue, { n: 1 });
  const [first] = await s.queues.receive(queue, { visibilityTimeout: 0.05 });
  if (!first) throw new Error(`setup: nothing received from ${queue}`);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [again] = await s.queues.receive(queue, { visibilityTimeout: 60, wait: 0.2 });
    if (again) {
      if (again.id !== first.id || again.attempts !== 2) throw new Error('setup: unexpected redelivery');
      break;
    }
    if (Date.now() > deadline) throw new Error('setup: the message was never delivered again');
  }
  return { params: { queue, id: first.id }, body: { receipt: first.receipt } };
};

const expectValue = (key: string, value: unknown) => async (s: Storage) => {
  expect(await s.kv.get(key)).toEqual(value);
};

// ---------------------------------------------------------------------------------------
// the table

const PUT = 'PUT /kv/{key}';
const kvPut = (name: string, key: string, body: unknown, status: number, code?: ErrorCode): Case => ({
  name,
  route: PUT,
  params: { key },
  body,
  expect: { status, code },
});
const bad = (status: number, code: ErrorCode) => ({ status, code });
const BAD = bad(400, 'bad_request');

const CASES: Case[] = [
  // ---- malformed bodies (PUT /kv/{key}: the key must still not exist)
  kvPut('truncated JSON', 'bi-trunc', '{"value": 1', 400, 'bad_request'),
  kvPut('JSON with trailing garbage', 'bi-trailing', '{"value": 1} x', 400, 'bad_request'),
  kvPut('NaN in JSON', 'bi-nan', '{"value": NaN}', 400, 'bad_request'),
  kvPut('Infinity in JSON', 'bi-infinity', '{"value": Infinity}', 400, 'bad_request'),
  kvPut('single-quoted JSON', 'bi-quotes', "{'value': 1}", 400, 'bad_request'),
  kvPut('body is an array', 'bi-array', [{ value: 1 }], 400, 'bad_request'),
  kvPut('body is a string', 'bi-string', '"value"', 400, 'bad_request'),
  kvPut('body is a number', 'bi-number', '42', 400, 'bad_request'),
  kvPut('body is null', 'bi-null', 'null', 400, 'bad_request'),
  kvPut('body is true', 'bi-true', 'true', 400, 'bad_request'),
  kvPut('empty body where one is required', 'bi-empty', '', 400, 'bad_request'),
  kvPut('whitespace-only body', 'bi-blank', '  \n ', 400, 'bad_request'),
  kvPut('no body at all', 'bi-nobody', undefined, 400, 'bad_request'),
  kvPut('empty object: value missing', 'bi-novalue', {}, 400, 'bad_request'),
  {
    name: 'content-type text/plain',
    route: PUT,
    params: { key: 'bi-textplain' },
    body: { value: 1 },
    headers: { 'content-type': 'text/plain' },
    expect: BAD,
  },
  {
    name: 'content-type application/x-www-form-urlencoded',
    route: PUT,
    params: { key: 'bi-form' },
    body: 'value=1',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    expect: BAD,
  },
  {
    name: 'JSON nested deeper than the library allows',
    route: PUT,
    params: { key: 'bi-deep' },
    body: `{"value": ${deeplyNested(500)}}`,
    expect: BAD,
  },
  // ---- wrong field types and values on PUT (an old value must stay as it was)
  ...(
    [
      ['ttl as a string', { value: 1, ttl: '10' }],
      ['ttl 0', { value: 1, ttl: 0 }],
      ['ttl negative', { value: 1, ttl: -1 }],
      ['ttl null', { value: 1, ttl: null }],
      ['ttl "NaN"', { value: 1, ttl: 'NaN' }],
      ['ttl over ten years', { value: 1, ttl: 1e12 }],
      ['ttl true', { value: 1, ttl: true }],
      ['nx "yes"', { value: 1, nx: 'yes' }],
      ['xx 1', { value: 1, xx: 1 }],
      ['nx and xx both true', { value: 1, nx: true, xx: true }],
      ['an unknown field', { value: 1, extra: true }],
      ['expiresAt (not part of the HTTP contract)', { value: 1, expiresAt: '2100-01-01T00:00:00Z' }],
    ] as const
  ).map(
    ([name, body], i): Case => ({
      name: `PUT ${name}`,
      route: PUT,
      params: { key: `bi-put-old-${i}` },
      body,
      setup: putOld(`bi-put-old-${i}`),
      expect: BAD,
      after: expectValue(`bi-put-old-${i}`, 'old'),
    }),
  ),
  kvPut('ttl 1e309 (Infinity once parsed)', 'bi-ttl-inf', '{"value": 1, "ttl": 1e309}', 400, 'bad_request'),
  // ---- sizes
  {
    name: 'a value over 256 KiB',
    route: PUT,
    params: { key: 'bi-big' },
    body: { value: stringOfJsonBytes(MAX_VALUE_BYTES + 1) },
    setup: putOld('bi-big'),
    expect: bad(413, 'payload_too_large'),
    after: expectValue('bi-big', 'old'),
  },
  {
    name: 'a value of exactly 256 KiB is accepted',
    route: PUT,
    params: { key: 'bi-big-exact' },
    body: { value: stringOfJsonBytes(MAX_VALUE_BYTES) },
    expect: { status: 200 },
    after: async (s) => expect(((await s.kv.get('bi-big-exact')) as string).length).toBe(MAX_VALUE_BYTES - 2),
  },
  // Not valid JSON either: a 400 would mean it was parsed before its size was checked.
  kvPut('a 5 MB body is refused unparsed', 'bi-5mb', FIVE_MB_UNPARSEABLE, 413, 'payload_too_large'),
  // ---- conflicts
  {
    name: 'nx on an existing key',
    route: PUT,
    params: { key: 'bi-nx' },
    body: { value: 'new', nx: true },
    setup: putOld('bi-nx'),
    expect: bad(409, 'conflict'),
    after: expectValue('bi-nx', 'old'),
  },
  kvPut('xx on a missing key', 'bi-xx', { value: 'new', xx: true }, 409, 'conflict'),
  // ---- names
  kvPut('empty key', '', { value: 1 }, 400, 'bad_request'),
  kvPut('key of 256 ASCII bytes', NAME_256, { value: 1 }, 400, 'bad_request'),
  kvPut('key of 86 three-byte characters (258 bytes)', EURO_258, { value: 1 }, 400, 'bad_request'),
  kvPut('key with NUL', 'bi-a\u0000b', { value: 1 }, 400, 'bad_request'),
  kvPut('key with a newline', 'bi-a\nb', { value: 1 }, 400, 'bad_request'),
  kvPut('key with DEL', 'bi-a\u007fb', { value: 1 }, 400, 'bad_request'),
  kvPut('key with a C1 control (U+0085)', 'bi-a\u0085b', { value: 1 }, 400, 'bad_request'),
  {
    ...kvPut('key of exactly 255 ASCII bytes is accepted', NAME_255, { value: 'max' }, 200),
    after: async (s, response) => {
      expect(response.json.key).toBe(NAME_255);
      expect(await s.kv.get(NAME_255)).toBe('max');
    },
  },
  {
    ...kvPut('key of 85 three-byte characters (255 bytes) is accepted', EURO_255, { value: 'max' }, 200),
    after: expectValue(EURO_255, 'max'),
  },
  {
    ...kvPut('emoji key is accepted', 'bi-🔑-🚀', { value: 'emoji' }, 200),
    after: async (s, response) => {
      expect(response.json.key).toBe('bi-🔑-🚀');
      expect(await s.kv.get('bi-🔑-🚀')).toBe('emoji');
    },
  },
  {
    ...kvPut('CJK key is accepted', 'bi-鍵-名前', { value: 'cjk' }, 200),
    after: expectValue('bi-鍵-名前', 'cjk'),
  },
  // A slash in a key travels URL-encoded (a%2Fb) in one path segment: it is the key `a/b`.
  {
    ...kvPut('URL-encoded slash in a key (a%2Fb) is the key a/b', 'bi-a/b', { value: 'slash' }, 200),
    after: async (s, response) => {
      expect(response.json.key).toBe('bi-a/b');
      expect(await s.kv.get('bi-a/b')).toBe('slash');
      const read = await call('GET /kv/{key}', { params: { key: 'bi-a/b' }, token: adminToken });
      expect(read.json).toMatchObject({ key: 'bi-a/b', value: 'slash' });
    },
  },
  {
    name: 'raw path a%2Fb without API Gateway path parameters is the key a/b',
    route: PUT,
    params: { key: 'bi-raw/b' },
    body: { value: 'raw' },
    event: (e) => {
      e.pathParameters = undefined;
    },
    expect: { status: 200 },
    after: expectValue('bi-raw/b', 'raw'),
  },
  {
    name: 'raw path with a malformed percent-escape',
    route: PUT,
    params: { key: 'bi-pct' },
    body: { value: 1 },
    event: (e) => {
      e.pathParameters = undefined;
      e.rawPath = '/kv/bi-pct%E0%A4%A';
    },
    expect: BAD,
  },
  {
    name: 'a query parameter on a route that takes none',
    route: PUT,
    params: { key: 'bi-query' },
    query: { ttl: '10' },
    body: { value: 1 },
    expect: BAD,
  },
  // ---- base64 bodies (API Gateway's isBase64Encoded)
  {
    name: 'a base64-encoded JSON body is decoded and accepted',
    route: PUT,
    params: { key: 'bi-b64' },
    event: (e) => {
      e.body = Buffer.from(JSON.stringify({ value: 'from base64' })).toString('base64');
      e.isBase64Encoded = true;
    },
    expect: { status: 200 },
    after: expectValue('bi-b64', 'from base64'),
  },
  {
    name: 'a base64-encoded body that is not JSON',
    route: PUT,
    params: { key: 'bi-b64-bad' },
    event: (e) => {
      e.body = Buffer.from('{"value": tru').toString('base64');
      e.isBase64Encoded = true;
    },
    expect: BAD,
  },
  {
    name: 'a base64-encoded 5 MB body',
    route: PUT,
    params: { key: 'bi-b64-huge' },
    event: (e) => {
      e.body = Buffer.from(FIVE_MB_UNPARSEABLE).toString('base64');
      e.isBase64Encoded = true;
    },
    expect: bad(413, 'payload_too_large'),
  },

  // ---- GET / DELETE /kv/{key}
  {
    name: 'GET a missing key',
    route: 'GET /kv/{key}',
    params: { key: 'bi-missing' },
    expect: bad(404, 'not_found'),
  },
  {
    name: 'GET with an unknown query parameter',
    route: 'GET /kv/{key}',
    params: { key: 'bi-missing' },
    query: { verbose: '1' },
    expect: BAD,
  },
  {
    name: 'GET with a request body',
    route: 'GET /kv/{key}',
    params: { key: 'bi-missing' },
    body: { value: 1 },
    expect: BAD,
  },
  { name: 'GET a key of 256 bytes', route: 'GET /kv/{key}', params: { key: NAME_256 }, expect: BAD },
  { name: 'GET a key with NUL', route: 'GET /kv/{key}', params: { key: 'a\u0000' }, expect: BAD },
  {
    name: 'DELETE a missing key',
    route: 'DELETE /kv/{key}',
    params: { key: 'bi-missing' },
    expect: bad(404, 'not_found'),
  },
  {
    name: 'DELETE with a request body',
    route: 'DELETE /kv/{key}',
    params: { key: 'bi-del-body' },
    body: { force: true },
    setup: putOld('bi-del-body'),
    expect: BAD,
  },
  { name: 'DELETE an empty key', route: 'DELETE /kv/{key}', params: { key: '' }, expect: BAD },

  // ---- POST /kv/{key}/expire (the key keeps its expiry)
  ...(
    [
      ['expire without ttl', {}],
      ['expire ttl as a string', { ttl: '60' }],
      ['expire ttl 0', { ttl: 0 }],
      ['expire ttl negative', { ttl: -5 }],
      ['expire ttl over ten years', { ttl: 1e12 }],
      ['expire with an unknown field', { ttl: 60, persist: true }],
      ['expire with an array body', [60]],
    ] as const
  ).map(
    ([name, body], i): Case => ({
      name,
      route: 'POST /kv/{key}/expire',
      params: { key: `bi-expire-${i}` },
      body,
      setup: putOld(`bi-expire-${i}`, 'old', 3600),
      expect: BAD,
    }),
  ),
  {
    name: 'expire a missing key',
    route: 'POST /kv/{key}/expire',
    params: { key: 'bi-missing' },
    body: { ttl: 60 },
    expect: bad(404, 'not_found'),
  },
  {
    name: 'expire without a body',
    route: 'POST /kv/{key}/expire',
    params: { key: 'bi-expire-nobody' },
    setup: putOld('bi-expire-nobody', 'old', 3600),
    expect: BAD,
  },

  // ---- POST /kv/{key}/incr (the value stays as it was)
  ...(
    [
      ['incr by 1.5', { by: 1.5 }],
      ['incr by "1"', { by: '1' }],
      ['incr by null', { by: null }],
      ['incr by 2^53 (not a safe integer)', { by: 2 ** 53 }],
      ['incr with an unknown field', { by: 1, step: 2 }],
    ] as const
  ).map(
    ([name, body], i): Case => ({
      name,
      route: 'POST /kv/{key}/incr',
      params: { key: `bi-incr-${i}` },
      body,
      setup: putOld(`bi-incr-${i}`, 10),
      expect: BAD,
      after: expectValue(`bi-incr-${i}`, 10),
    }),
  ),
  ...(
    [
      ['incr on a string value', 'abc'],
      ['incr on a numeric string', '5'],
      ['incr on a non-integer number', 1.5],
      ['incr on an object', { n: 1 }],
      ['incr on null', null],
      ['incr on true', true],
      ['incr on 1e20 (an integer past 2^53)', 1e20],
      ['incr on 2^53', 2 ** 53],
    ] as const
  ).map(
    ([name, value], i): Case => ({
      name,
      route: 'POST /kv/{key}/incr',
      params: { key: `bi-incr-nonint-${i}` },
      body: { by: 1 },
      setup: putOld(`bi-incr-nonint-${i}`, value),
      expect: bad(409, 'conflict'),
      after: expectValue(`bi-incr-nonint-${i}`, value),
    }),
  ),
  {
    name: 'incr past 2^53−1',
    route: 'POST /kv/{key}/incr',
    params: { key: 'bi-incr-overflow' },
    body: { by: 1 },
    setup: putOld('bi-incr-overflow', Number.MAX_SAFE_INTEGER),
    expect: bad(409, 'conflict'),
    after: expectValue('bi-incr-overflow', Number.MAX_SAFE_INTEGER),
  },
  {
    name: 'incr below −(2^53−1)',
    route: 'POST /kv/{key}/incr',
    params: { key: 'bi-incr-underflow' },
    body: { by: -2 },
    setup: putOld('bi-incr-underflow', -Number.MAX_SAFE_INTEGER + 1),
    expect: bad(409, 'conflict'),
    after: expectValue('bi-incr-underflow', -Number.MAX_SAFE_INTEGER + 1),
  },
  {
    name: 'incr of a missing key by a large step past 2^53−1',
    route: 'POST /kv/{key}/incr',
    params: { key: 'bi-incr-missing-big' },
    body: { by: Number.MAX_SAFE_INTEGER },
    setup: async (s) => {
      await s.kv.set('bi-incr-missing-big', 1);
      return undefined;
    },
    expect: bad(409, 'conflict'),
    after: expectValue('bi-incr-missing-big', 1),
  },
  {
    name: 'incr body null',
    route: 'POST /kv/{key}/incr',
    params: { key: 'bi-incr-nullbody' },
    body: 'null',
    expect: BAD,
  },

  // ---- POST /sessions (no cluster becomes active)
  ...(
    [
      ['session without clusterId', {}],
      ['session clusterId empty', { clusterId: '' }],
      ['session clusterId a number', { clusterId: 123 }],
      ['session clusterId of 256 bytes', { clusterId: NAME_256 }],
      ['session clusterId of 258 bytes (86 characters)', { clusterId: EURO_258 }],
      ['session clusterId with a newline', { clusterId: 'bi-c\n1' }],
      ['session clusterId with NUL', { clusterId: 'bi-c\u00001' }],
      ['session ttl 0', { clusterId: 'bi-s-ttl0', ttl: 0 }],
      ['session ttl negative', { clusterId: 'bi-s-ttlneg', ttl: -1 }],
      ['session ttl as a string', { clusterId: 'bi-s-ttlstr', ttl: '300' }],
      ['session ttl null', { clusterId: 'bi-s-ttlnull', ttl: null }],
      ['session data an array', { clusterId: 'bi-s-dataarr', data: [1] }],
      ['session data a string', { clusterId: 'bi-s-datastr', data: 'x' }],
      ['session userId a number', { clusterId: 'bi-s-user', userId: 7 }],
      ['session correlationId of 256 bytes', { clusterId: 'bi-s-corr', correlationId: NAME_256 }],
      ['session with an unknown field', { clusterId: 'bi-s-unknown', owner: 'me' }],
      ['session with a sessionId (not settable)', { clusterId: 'bi-s-id', sessionId: 'mine' }],
    ] as const
  ).map(([name, body]): Case => ({ name, route: 'POST /sessions', body, expect: BAD })),
  {
    name: 'session clusterId a lone surrogate',
    route: 'POST /sessions',
    body: '{"clusterId": "bi-\\ud800"}',
    expect: BAD,
  },
  {
    name: 'session data over 256 KiB',
    route: 'POST /sessions',
    body: { clusterId: 'bi-s-bigdata', data: { blob: 'x'.repeat(MAX_VALUE_BYTES) } },
    expect: bad(413, 'payload_too_large'),
  },
  { name: 'session body an array', route: 'POST /sessions', body: [{ clusterId: 'bi-s-arr' }], expect: BAD },
  { name: 'session without a body', route: 'POST /sessions', expect: BAD },
  {
    name: 'session body text/plain',
    route: 'POST /sessions',
    body: { clusterId: 'bi-s-text' },
    headers: { 'content-type': 'text/plain' },
    expect: BAD,
  },

  // ---- GET /sessions, /sessions/{id}, keepalive, DELETE, clusters
  { name: 'sessions query with neither clusterId nor correlationId', route: 'GET /sessions', expect: BAD },
  {
    name: 'sessions query with both clusterId and correlationId',
    route: 'GET /sessions',
    query: { clusterId: 'bi-c', correlationId: 'bi-r' },
    expect: BAD,
  },
  { name: 'sessions query clusterId empty', route: 'GET /sessions', query: { clusterId: '' }, expect: BAD },
  {
    name: 'sessions query with an unknown parameter',
    route: 'GET /sessions',
    query: { clusterId: 'bi-c', userId: 'u' },
    expect: BAD,
  },
  {
    name: 'sessions query clusterId with a control character',
    route: 'GET /sessions',
    query: { clusterId: 'bi-c\u0001' },
    expect: BAD,
  },
  {
    name: 'GET an unknown session',
    route: 'GET /sessions/{id}',
    params: { id: 'bi-no-such-session' },
    expect: bad(404, 'not_found'),
  },
  {
    name: 'GET a session id of 256 bytes',
    route: 'GET /sessions/{id}',
    params: { id: NAME_256 },
    expect: BAD,
  },
  {
    name: 'keepalive an unknown session',
    route: 'POST /sessions/{id}/keepalive',
    params: { id: 'bi-no-such-session' },
    body: {},
    expect: bad(404, 'not_found'),
  },
  ...(
    [
      ['keepalive ttl 0', { ttl: 0 }],
      ['keepalive ttl negative', { ttl: -30 }],
      ['keepalive ttl as a string', { ttl: '30' }],
      ['keepalive ttl null', { ttl: null }],
      ['keepalive ttl over ten years', { ttl: 1e12 }],
      ['keepalive with an unknown field', { ttl: 30, data: {} }],
      ['keepalive body a string', '"30"'],
    ] as const
  ).map(
    ([name, body]): Case => ({
      name,
      route: 'POST /sessions/{id}/keepalive',
      body,
      setup: newSession,
      expect: BAD,
    }),
  ),
  {
    name: 'DELETE an unknown session',
    route: 'DELETE /sessions/{id}',
    params: { id: 'bi-no-such-session' },
    expect: bad(404, 'not_found'),
  },
  {
    name: 'cluster activity of an id with DEL',
    route: 'GET /clusters/{clusterId}/active',
    params: { clusterId: 'bi-c\u007f' },
    expect: BAD,
  },
  {
    name: 'cluster activity of an id of 256 bytes',
    route: 'GET /clusters/{clusterId}/active',
    params: { clusterId: NAME_256 },
    expect: BAD,
  },
  {
    name: 'active clusters with an unknown query parameter',
    route: 'GET /clusters/active',
    query: { offset: '10' },
    expect: BAD,
  },
  ...(['GET /clusters/active', 'GET /tokens'] as const).flatMap((route) =>
    (
      [
        ['limit 0', { limit: '0' }],
        ['limit 1001', { limit: '1001' }],
        ['limit not a number', { limit: 'ten' }],
        ['limit negative', { limit: '-1' }],
        ['limit a fraction', { limit: '1.5' }],
        ['cursor not from a page', { cursor: 'garbage' }],
        ['cursor of padded base64', { cursor: 'AAAA=' }],
      ] as const
    ).map(([what, query]) => ({ name: `${route} with ${what}`, route, query: { ...query }, expect: BAD })),
  ),

  // ---- POST /queues/{queue}/messages (the depth stays as it was)
  ...(
    [
      ['send without payload', {}],
      ['send delay negative', { payload: 1, delay: -1 }],
      ['send delay as a string', { payload: 1, delay: '1' }],
      ['send delay null', { payload: 1, delay: null }],
      ['send delay over 7 days', { payload: 1, delay: 604_801 }],
      ['send dedupId empty', { payload: 1, dedupId: '' }],
      ['send dedupId a number', { payload: 1, dedupId: 42 }],
      ['send dedupId of 256 bytes', { payload: 1, dedupId: NAME_256 }],
      ['send dedupId with a newline', { payload: 1, dedupId: 'a\nb' }],
      ['send with an unknown field', { payload: 1, priority: 9 }],
    ] as const
  ).map(
    ([name, body], i): Case => ({
      name,
      route: 'POST /queues/{queue}/messages',
      params: { queue: `bi-send-${i}` },
      body,
      setup: sendOne(`bi-send-${i}`),
      expect: BAD,
    }),
  ),
  {
    name: 'send a payload over 256 KiB',
    route: 'POST /queues/{queue}/messages',
    params: { queue: 'bi-send-big' },
    body: { payload: stringOfJsonBytes(MAX_VALUE_BYTES + 1) },
    setup: sendOne('bi-send-big'),
    expect: bad(413, 'payload_too_large'),
  },
  {
    name: 'send with malformed JSON',
    route: 'POST /queues/{queue}/messages',
    params: { queue: 'bi-send-malformed' },
    body: '{"payload": [1, 2}',
    setup: sendOne('bi-send-malformed'),
    expect: BAD,
  },
  {
    name: 'send to a queue name of 258 bytes',
    route: 'POST /queues/{queue}/messages',
    params: { queue: EURO_258 },
    body: { payload: 1 },
    expect: BAD,
  },
  {
    name: 'send to a queue name with NUL',
    route: 'POST /queues/{queue}/messages',
    params: { queue: 'bi-q\u0000' },
    body: { payload: 1 },
    expect: BAD,
  },
  {
    name: 'send to an emoji queue is accepted',
    route: 'POST /queues/{queue}/messages',
    params: { queue: 'bi-📬' },
    body: { payload: 'mail' },
    expect: { status: 201 },
    after: async (s) => expect((await s.queues.stats('bi-📬')).depth).toBe(1),
  },

  // ---- POST /queues/{queue}/receive (nothing gets leased)
  ...(
    [
      ['receive max 0', { max: 0 }],
      ['receive max 101', { max: 101 }],
      ['receive max 1.5', { max: 1.5 }],
      ['receive max "1"', { max: '1' }],
      ['receive visibilityTimeout 0', { visibilityTimeout: 0 }],
      ['receive visibilityTimeout negative', { visibilityTimeout: -1 }],
      ['receive visibilityTimeout over 12 hours', { visibilityTimeout: 43_201 }],
      ['receive wait 21', { wait: 21 }],
      ['receive wait -1', { wait: -1 }],
      ['receive wait true', { wait: true }],
      ['receive with an unknown field', { max: 1, peek: true }],
      ['receive body an array', [1]],
    ] as const
  ).map(
    ([name, body], i): Case => ({
      name,
      route: 'POST /queues/{queue}/receive',
      params: { queue: `bi-recv-${i}` },
      body,
      setup: sendOne(`bi-recv-${i}`),
      expect: BAD,
    }),
  ),

  // docs/api.md allows wait up to 20 s and answers an empty list after it: never a timeout error.
  {
    name: 'receive wait 20 (the documented maximum) on an empty queue answers an empty list',
    route: 'POST /queues/{queue}/receive',
    params: { queue: 'bi-recv-wait-max' },
    body: { wait: 20 },
    expect: { status: 200 },
    after: async (_s, response) => expect(response.json).toEqual({ messages: [] }),
  },
  // ---- ack / nack (the lease stays as it was)
  {
    name: 'ack an unknown message',
    route: 'POST /queues/{queue}/messages/{id}/ack',
    params: { queue: 'bi-ack', id: 'bi-no-such-message' },
    body: { receipt: 'whatever' },
    expect: bad(404, 'not_found'),
  },
  {
    name: 'ack a leased message with a garbage receipt',
    route: 'POST /queues/{queue}/messages/{id}/ack',
    setup: leased('bi-ack-garbage', () => ({ receipt: 'not-a-receipt' })),
    expect: bad(409, 'conflict'),
  },
  {
    name: 'ack with a stale receipt (lease ended, delivered again)',
    route: 'POST /queues/{queue}/messages/{id}/ack',
    setup: staleLease('bi-ack-stale'),
    expect: bad(409, 'conflict'),
  },
  ...(
    [
      ['ack without receipt', {}],
      ['ack receipt empty', { receipt: '' }],
      ['ack receipt a number', { receipt: 12345 }],
      ['ack receipt over 1024 characters', { receipt: 'r'.repeat(1025) }],
      ['ack with an unknown field', { receipt: 'r', force: true }],
    ] as const
  ).map(
    ([name, body], i): Case => ({
      name,
      route: 'POST /queues/{queue}/messages/{id}/ack',
      setup: leased(`bi-ack-${i}`, () => body),
      expect: BAD,
    }),
  ),
  {
    name: 'ack without a body',
    route: 'POST /queues/{queue}/messages/{id}/ack',
    setup: leased('bi-ack-nobody', () => undefined),
    expect: BAD,
  },
  {
    name: 'nack an unknown message',
    route: 'POST /queues/{queue}/messages/{id}/nack',
    params: { queue: 'bi-nack', id: 'bi-no-such-message' },
    body: { receipt: 'whatever' },
    expect: bad(404, 'not_found'),
  },
  {
    name: 'nack a leased message with a garbage receipt',
    route: 'POST /queues/{queue}/messages/{id}/nack',
    setup: leased('bi-nack-garbage', () => ({ receipt: 'not-a-receipt' })),
    expect: bad(409, 'conflict'),
  },
  {
    name: 'nack with a stale receipt (lease ended, delivered again)',
    route: 'POST /queues/{queue}/messages/{id}/nack',
    setup: staleLease('bi-nack-stale'),
    expect: bad(409, 'conflict'),
  },
  ...(
    [
      ['nack delay -1', -1],
      ['nack delay as a string', '5'],
      ['nack delay null', null],
      ['nack delay over 7 days', 604_801],
    ] as const
  ).map(
    ([name, delay], i): Case => ({
      name,
      route: 'POST /queues/{queue}/messages/{id}/nack',
      setup: leased(`bi-nack-${i}`, (receipt) => ({ receipt, delay })),
      expect: BAD,
    }),
  ),
  {
    name: 'queue stats with a query parameter',
    route: 'GET /queues/{queue}',
    params: { queue: 'bi-stats' },
    query: { verbose: 'true' },
    expect: BAD,
  },
  { name: 'queue stats of an empty name', route: 'GET /queues/{queue}', params: { queue: '' }, expect: BAD },

  // ---- POST /channels/{channel}/messages (history stays as it was)
  ...(
    [
      ['publish without message', {}],
      ['publish with an unknown field', { message: 1, ttl: 5 }],
      ['publish body a string', '"hello"'],
      ['publish body an array', [{ message: 1 }]],
      ['publish truncated JSON', '{"message": {"a": 1}'],
    ] as const
  ).map(
    ([name, body], i): Case => ({
      name,
      route: 'POST /channels/{channel}/messages',
      params: { channel: `bi-pub-${i}` },
      body,
      expect: BAD,
    }),
  ),
  {
    name: 'publish a message over 256 KiB',
    route: 'POST /channels/{channel}/messages',
    params: { channel: 'bi-pub-big' },
    body: { message: stringOfJsonBytes(MAX_VALUE_BYTES + 1) },
    setup: async (s) => {
      await s.events.publish('bi-pub-big', 'earlier');
      return undefined;
    },
    expect: bad(413, 'payload_too_large'),
  },
  {
    name: 'publish to a channel name with a newline',
    route: 'POST /channels/{channel}/messages',
    params: { channel: 'bi-ch\n' },
    body: { message: 1 },
    expect: BAD,
  },
  {
    name: 'publish to a channel name of 256 bytes',
    route: 'POST /channels/{channel}/messages',
    params: { channel: NAME_256 },
    body: { message: 1 },
    expect: BAD,
  },
  {
    name: 'publish to a CJK channel is accepted',
    route: 'POST /channels/{channel}/messages',
    params: { channel: 'bi-频道' },
    body: { message: 'hi' },
    expect: { status: 202 },
    after: async (s) => expect((await s.events.history('bi-频道')).map((e) => e.message)).toEqual(['hi']),
  },

  // ---- GET /channels/{channel}/messages
  ...(
    [
      ['history limit 0', { limit: '0' }],
      ['history limit 1001', { limit: '1001' }],
      ['history limit abc', { limit: 'abc' }],
      ['history limit 1.5', { limit: '1.5' }],
      ['history limit -1', { limit: '-1' }],
      ['history limit empty', { limit: '' }],
      ['history after not an id', { after: 'abc' }],
      ['history after negative', { after: '-1' }],
      ['history after 1.5', { after: '1.5' }],
      ['history after of 17 digits', { after: '12345678901234567' }],
      ['history after of 65 characters', { after: '1'.repeat(65) }],
      ['history with an unknown parameter', { before: '5' }],
    ] as const
  ).map(
    ([name, query]): Case => ({
      name,
      route: 'GET /channels/{channel}/messages',
      params: { channel: 'bi-history' },
      query,
      expect: BAD,
    }),
  ),
  {
    name: 'history limit 1000 is accepted',
    route: 'GET /channels/{channel}/messages',
    params: { channel: 'bi-history' },
    query: { limit: '1000' },
    expect: { status: 200 },
  },

  // ---- POST /tokens (no token appears)
  ...(
    [
      ['token without scopes', { identity: 'svc' }],
      ['token scopes empty', { identity: 'svc', scopes: [] }],
      ['token scopes not an array', { identity: 'svc', scopes: 'admin' }],
      ['token with an unknown scope', { identity: 'svc', scopes: ['kv:read', 'root'] }],
      ['token scope a number', { identity: 'svc', scopes: [1] }],
      ['token resources empty', { identity: 'svc', scopes: ['kv:read'], resources: [] }],
      ['token resources not an array', { identity: 'svc', scopes: ['kv:read'], resources: '*' }],
      ['token resource empty', { identity: 'svc', scopes: ['kv:read'], resources: [''] }],
      ['token resource with a newline', { identity: 'svc', scopes: ['kv:read'], resources: ['a\n*'] }],
      ['token ttl 0', { identity: 'svc', scopes: ['kv:read'], ttl: 0 }],
      ['token ttl negative', { identity: 'svc', scopes: ['kv:read'], ttl: -60 }],
      ['token ttl as a string', { identity: 'svc', scopes: ['kv:read'], ttl: '60' }],
      ['token without identity', { scopes: ['kv:read'] }],
      ['token identity empty', { identity: '', scopes: ['kv:read'] }],
      ['token identity with NUL', { identity: 'svc\u0000', scopes: ['kv:read'] }],
      ['token with an unknown field', { identity: 'svc', scopes: ['kv:read'], token: 'chosen' }],
    ] as const
  ).map(([name, body]): Case => ({ name, route: 'POST /tokens', body, expect: BAD })),

  // ---- more values and names
  kvPut('a value of 1e400 (Infinity once parsed)', 'bi-1e400', '{"value": 1e400}', 400, 'bad_request'),
  kvPut('a value with a lone surrogate', 'bi-surrogate-value', '{"value": "a\\ud800b"}', 400, 'bad_request'),
  {
    name: 'a key with a lone surrogate (as API Gateway hands it over)',
    route: PUT,
    params: { key: 'bi-surrogate-key' },
    body: { value: 1 },
    event: (e) => {
      e.pathParameters = { key: 'bi-\ud800' };
    },
    expect: BAD,
  },
  {
    name: 'an unencoded slash in the raw path (two segments for one parameter)',
    route: PUT,
    params: { key: 'bi-two' },
    body: { value: 1 },
    event: (e) => {
      e.pathParameters = undefined;
      e.rawPath = '/kv/bi-two/segments';
    },
    expect: BAD,
  },
  {
    ...kvPut('a null value is stored (null is JSON)', 'bi-null-value', { value: null }, 200),
    after: async () => {
      const read = await call('GET /kv/{key}', { params: { key: 'bi-null-value' }, token: adminToken });
      expect(read.status, read.raw).toBe(200);
      expect(read.json).toEqual({ key: 'bi-null-value', value: null, expiresAt: null });
    },
  },
  {
    name: 'session ttl over ten years',
    route: 'POST /sessions',
    body: { clusterId: 'bi-s-ttlhuge', ttl: 1e12 },
    expect: BAD,
  },
  {
    name: 'session data with a lone-surrogate key',
    route: 'POST /sessions',
    body: '{"clusterId": "bi-s-datakey", "data": {"\\ud800": 1}}',
    expect: BAD,
  },
  {
    name: 'session userId with a control character',
    route: 'POST /sessions',
    body: { clusterId: 'bi-s-userctl', userId: 'u\u0007' },
    expect: BAD,
  },
  {
    name: 'keepalive an ended session',
    route: 'POST /sessions/{id}/keepalive',
    body: {},
    setup: async (s) => {
      const { sessionId } = await s.sessions.create({ clusterId: 'bi-ended' });
      await s.sessions.end(sessionId);
      return { params: { id: sessionId } };
    },
    expect: bad(404, 'not_found'),
  },
  {
    name: 'sessions query correlationId with a control character',
    route: 'GET /sessions',
    query: { correlationId: 'bi-r\u001b' },
    expect: BAD,
  },
  {
    name: 'ack with the receipt of another message of the queue',
    route: 'POST /queues/{queue}/messages/{id}/ack',
    setup: async (s) => {
      await s.queues.send('bi-ack-other', 'a');
      await s.queues.send('bi-ack-other', 'b');
      const [a, b] = await s.queues.receive('bi-ack-other', { max: 2, visibilityTimeout: 60 });
      if (!a || !b) throw new Error('setup: expected two messages');
      return { params: { queue: 'bi-ack-other', id: a.id }, body: { receipt: b.receipt } };
    },
    expect: bad(409, 'conflict'),
  },
  kvPut(
    'PUT body with a __proto__ field',
    'bi-proto',
    '{"value": 1, "__proto__": {"admin": true}}',
    400,
    'bad_request',
  ),
  {
    name: 'publish a message of 1e400 (Infinity once parsed)',
    route: 'POST /channels/{channel}/messages',
    params: { channel: 'bi-pub-inf' },
    body: '{"message": 1e400}',
    expect: BAD,
  },
  {
    name: 'history after the largest 16-digit id is accepted (nothing after it)',
    route: 'GET /channels/{channel}/messages',
    params: { channel: 'bi-history' },
    query: { after: '9999999999999999' },
    expect: { status: 200 },
    after: async (_s, response) => expect(response.json).toEqual({ messages: [] }),
  },
  {
    name: 'token with 101 resources',
    route: 'POST /tokens',
    body: {
      identity: 'svc',
      scopes: ['kv:read'],
      resources: Array.from({ length: 101 }, (_, i) => `r-${i}`),
    },
    expect: BAD,
  },
  {
    name: 'token resource of 256 bytes',
    route: 'POST /tokens',
    body: { identity: 'svc', scopes: ['kv:read'], resources: [NAME_256] },
    expect: BAD,
  },
  {
    name: 'token ttl over ten years',
    route: 'POST /tokens',
    body: { identity: 'svc', scopes: ['kv:read'], ttl: 1e12 },
    expect: BAD,
  },
  {
    name: 'token identity of 256 bytes',
    route: 'POST /tokens',
    body: { identity: NAME_256, scopes: ['kv:read'] },
    expect: BAD,
  },
  {
    name: 'nack with an unknown field',
    route: 'POST /queues/{queue}/messages/{id}/nack',
    setup: leased('bi-nack-unknown', (receipt) => ({ receipt, requeue: false })),
    expect: BAD,
  },
  {
    name: 'publish to an empty channel name',
    route: 'POST /channels/{channel}/messages',
    params: { channel: '' },
    body: { message: 1 },
    expect: BAD,
  },
  {
    name: 'history of an empty channel name',
    route: 'GET /channels/{channel}/messages',
    params: { channel: '' },
    expect: BAD,
  },
  {
    name: 'cluster activity of an empty id',
    route: 'GET /clusters/{clusterId}/active',
    params: { clusterId: '' },
    expect: BAD,
  },
  { name: 'GET an empty session id', route: 'GET /sessions/{id}', params: { id: '' }, expect: BAD },
  { name: 'DELETE an empty session id', route: 'DELETE /sessions/{id}', params: { id: '' }, expect: BAD },
  { name: 'revoke an empty token id', route: 'DELETE /tokens/{id}', params: { id: '' }, expect: BAD },
  {
    name: 'revoke an unknown token',
    route: 'DELETE /tokens/{id}',
    params: { id: 'bi-no-such-token' },
    expect: bad(404, 'not_found'),
  },
  { name: 'list tokens with a query parameter', route: 'GET /tokens', query: { all: '1' }, expect: BAD },
];

// ---------------------------------------------------------------------------------------
// running a case

let adminToken: string;

function describeBadInput(backend: Backend): void {
  let storage: Storage;

  beforeAll(async () => {
    storage = backend.create();
    adminToken = (await storage.tokens.issue({ identity: 'bad-input-test', scopes: ['admin'] })).token;
  });
  // The handlers' storage is module state shared by every describe of this file: set it per test.
  beforeEach(() => serveFrom(storage, resolveConfig({})));
  afterAll(async () => {
    try {
      await storage?.close();
    } finally {
      await backend.cleanup();
    }
  });

  it('the table has at least 60 cases, uniquely named, on every route', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
    for (const c of CASES) expect(routeFor(c.route), c.route).toBeDefined();
  });

  for (const c of CASES) {
    const title = `${c.name} → ${c.expect.status}${c.expect.code ? ` ${c.expect.code}` : ''}`;
    it(title, async () => {
      const prepared = (await c.setup?.(storage)) ?? {};
      const request: Request = {
        params: { ...c.params, ...prepared.params },
        query: c.query,
        body: 'body' in prepared ? prepared.body : c.body,
        headers: c.headers,
      };
      const refused = c.expect.status >= 400;
      const readState = refused ? (c.state ?? routeState(c.route)) : undefined;
      const before = readState ? await readState(storage, request) : undefined;

      const options = { ...request, token: adminToken };
      const response = await call(c.route, { ...options, alter: c.event });

      expect(response.status, `never a 5xx: ${response.raw?.slice(0, 500)}`).toBeLessThan(500);
      expect(response.status, response.raw?.slice(0, 500)).toBe(c.expect.status);
      if (refused) {
        expect(String(response.headers['content-type'])).toMatch(/^application\/json\b/);
        expect(response.json).toStrictEqual({ error: { code: c.expect.code, message: expect.any(String) } });
        expect(response.json.error.message).not.toBe('');
        expect(response.raw).not.toMatch(LEAK);
      }
      if (readState) expect(await readState(storage, request), 'nothing half-written').toEqual(before);
      await c.after?.(storage, response);
    });
  }
}

const BACKENDS: Backend[] = [redisBackend(), postgresBackend({ name: 'postgresql-pg', driver: 'pg' })];

for (const backend of BACKENDS) {
  const unavailable = await backend.available();
  if (unavailable === undefined) {
    describe(`bad input [${backend.name}]`, () => describeBadInput(backend));
  } else if (process.env.CI) {
    describe(`bad input [${backend.name}]`, () => {
      it(`${backend.name} is reachable (required under CI)`, () => {
        throw new Error(`${backend.name} is unavailable under CI: ${unavailable}`);
      });
    });
  } else {
    const reason = `${unavailable} (${installHint(backend)})`;
    console.warn(`\n⚠ bad input [${backend.name}] SKIPPED: ${reason}\n`);
    describe.skip(`bad input [${backend.name}] — SKIPPED: ${reason}`, () => describeBadInput(backend));
  }
}
