/**
 * The hostile-input corpus: requests and WebSocket frames a careless or malicious client sends,
 * each with the exact refusal it must meet. Run by test/e2e/hostile.test.ts against one
 * `npm start` (serverless-offline on the embedded database), which also checks that no refused
 * case wrote anything (every table of the store reads the same before and after) and that no
 * answer carries a stack trace.
 *
 * To add a case: append it to its route's group below. HTTP paths are sent byte for byte (no
 * URL normalisation), so percent-encoding and dot segments reach the gateway as written.
 * `needs` names a change the case waits for (it still runs; see the runner's report).
 */
import type { ApiErrorCode } from '../../../functions/runtime/http.js';
import { MAX_GLOB_STARS, MAX_GLOBS_PER_TOKEN } from '../../../lib/limits.js';

export type Group =
  | 'routing'
  | 'health'
  | 'kv'
  | 'sessions'
  | 'clusters'
  | 'queues'
  | 'channels'
  | 'tokens'
  | 'websocket';

export type Attack =
  | 'auth'
  | 'scope'
  | 'glob'
  | 'json'
  | 'content-type'
  | 'size'
  | 'number'
  | 'prototype'
  | 'name'
  | 'encoding'
  | 'query'
  | 'method'
  | 'field'
  | 'state'
  | 'frame';

/** Tokens the runner issues before the corpus runs (see `TOKEN_SPECS`). */
export type TokenName =
  | 'teamA'
  | 'teamAAdmin'
  | 'kvReader'
  | 'publisher'
  | 'subscriber'
  | 'noWs'
  | 'starry'
  | 'expired'
  | 'revoked';

/** Who sends the request: the bootstrap admin, one of the corpus' tokens, a made-up token, or nobody. */
export type As = 'admin' | 'none' | 'garbage' | TokenName;

export const TEAM_A_GLOB = 'team-a-*';
/** The most stars a pattern may carry, arranged so that a long name almost matches. */
export const STARRY_GLOB = `team-a-${'a*'.repeat(MAX_GLOB_STARS)}!`;

export const TOKEN_SPECS: Record<TokenName, { scopes: string[]; resources?: string[]; ttl?: number }> = {
  teamA: {
    scopes: [
      'kv:read',
      'kv:write',
      'sessions:read',
      'sessions:write',
      'queues:send',
      'queues:receive',
      'events:publish',
      'events:subscribe',
    ],
    resources: [TEAM_A_GLOB],
  },
  teamAAdmin: { scopes: ['admin'], resources: [TEAM_A_GLOB] },
  kvReader: { scopes: ['kv:read'] },
  publisher: { scopes: ['events:publish'], resources: [TEAM_A_GLOB] },
  subscriber: { scopes: ['events:subscribe'], resources: [TEAM_A_GLOB] },
  noWs: { scopes: ['kv:read', 'sessions:read'] },
  starry: { scopes: ['kv:read', 'events:subscribe'], resources: [STARRY_GLOB] },
  // Issued with a 1 s ttl and used once it has passed.
  expired: { scopes: ['admin'], ttl: 1 },
  // Issued, then revoked.
  revoked: { scopes: ['admin'] },
};

/** What the runner creates before the corpus runs, through the API as the admin. */
export interface Fixtures {
  token: Record<TokenName, string>;
  tokenId: Record<TokenName, string>;
  /** Live sessions of clusters `team-a-cluster` and `team-b-cluster`. */
  sessionA: string;
  sessionB: string;
  /** A message of `team-b-jobs` leased for ten minutes: its id and current receipt. */
  leasedB: { id: string; receipt: string };
}

/** Kv keys, queues and channels the runner writes before the corpus (refused writes must leave them). */
export const SEEDED = {
  kv: { 'hx-old': 'old', 'hx-count': 1, 'team-b-x': 'b', 'team-a-x': 'a' },
  queues: ['team-b-jobs', 'hx-jobs'],
  channels: ['team-b-news', 'hx-news'],
} as const;

type Of<T> = T | ((fixtures: Fixtures) => T);

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
/** A request body: a string or bytes are sent as they are, anything else as its JSON. */
export type Body = Json | Buffer;

export type HttpExpect =
  | { status: number; code: ApiErrorCode; allow?: string }
  /**
   * Answered by the gateway before any function runs (here serverless-offline's HTTP server),
   * with its own body: the status is checked, and that nothing was written or leaked.
   */
  | { status: number; gateway: string };

export interface HttpCase {
  kind: 'http';
  group: Group;
  attack: Attack;
  name: string;
  method: string;
  /** The request target (path and query), sent as written. */
  path: Of<string>;
  /** Default `admin`: `Authorization: Bearer <its token>`; `none`: no token header. */
  as?: As;
  /** Raw header pairs added after the token header (duplicates are sent as duplicates). */
  headers?: Of<[string, string][]>;
  body?: Of<Body>;
  /** Default `application/json` when there is a body; `null`: no content-type header. */
  contentType?: string | null;
  expect: HttpExpect;
  needs?: string;
}

export interface WsCase {
  kind: 'ws';
  group: 'websocket';
  attack: Attack;
  name: string;
  as: As;
  /** How the token is given at $connect (default `?token=<token>`). */
  connect?: { query?: Of<string>; protocol?: Of<string> };
  /** The frame sent once the connection is open (absent: only the connection is tried). */
  frame?: Of<string | Buffer>;
  /** Between opening the connection and sending the frame: revoke the token, or let it expire. */
  meanwhile?: 'revoke' | 'expire';
  /** `closedByServer`: no frame is sent; the server closes the connection by itself. */
  /** `echo`: what the error frame repeats of a queue frame (its queue, and an ack's, nack's or extend's id). */
  expect:
    | { refused: number }
    | { code: ApiErrorCode; closes?: boolean; echo?: { queue?: string; id?: string } }
    | { closedByServer: true };
  needs?: string;
}

export type Case = HttpCase | WsCase;

// ---------------------------------------------------------------------------------------
// shorthands

const enc = encodeURIComponent;
const NAME_255 = 'n'.repeat(255);
const NAME_256 = 'n'.repeat(256);
const EURO_258 = '€'.repeat(86); // 258 bytes of UTF-8 in 86 characters
const MAX_VALUE_BYTES = 256 * 1024;
/** A JSON string literal whose JSON text is `bytes` bytes. */
const jsonString = (bytes: number) => `"${'x'.repeat(bytes - 2)}"`;
const nested = (depth: number, leaf = '1') => `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`;
const nestedObject = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

const BAD = (status = 400, code: ApiErrorCode = 'bad_request') => ({ status, code }) as const;
const BAD_REQUEST = BAD();
const UNAUTHORIZED = BAD(401, 'unauthorized');
const FORBIDDEN = BAD(403, 'forbidden');
const NOT_FOUND = BAD(404, 'not_found');
const CONFLICT = BAD(409, 'conflict');
const TOO_LARGE = BAD(413, 'payload_too_large');

function http(
  group: Group,
  attack: Attack,
  name: string,
  rest: Omit<HttpCase, 'kind' | 'group' | 'attack' | 'name'>,
): HttpCase {
  return { kind: 'http', group, attack, name, ...rest };
}

/** One valid request per authenticated route, on seeded data a refused request must leave alone. */
interface Sample {
  group: Group;
  method: string;
  path: Of<string>;
  body?: Of<Body>;
}

const SAMPLES: Record<string, Sample> = {
  'PUT /kv/{key}': { group: 'kv', method: 'PUT', path: '/kv/team-b-x', body: { value: 'new' } },
  'GET /kv/{key}': { group: 'kv', method: 'GET', path: '/kv/team-b-x' },
  'DELETE /kv/{key}': { group: 'kv', method: 'DELETE', path: '/kv/team-b-x' },
  'POST /kv/{key}/expire': { group: 'kv', method: 'POST', path: '/kv/team-b-x/expire', body: { ttl: 1 } },
  'POST /kv/{key}/incr': { group: 'kv', method: 'POST', path: '/kv/team-b-x/incr', body: { by: 1 } },
  'POST /sessions': {
    group: 'sessions',
    method: 'POST',
    path: '/sessions',
    body: { clusterId: 'team-b-cluster' },
  },
  'GET /sessions': { group: 'sessions', method: 'GET', path: '/sessions?clusterId=team-b-cluster' },
  'GET /sessions/{id}': { group: 'sessions', method: 'GET', path: (f) => `/sessions/${f.sessionB}` },
  'POST /sessions/{id}/keepalive': {
    group: 'sessions',
    method: 'POST',
    path: (f) => `/sessions/${f.sessionB}/keepalive`,
    body: { ttl: 5 },
  },
  'DELETE /sessions/{id}': { group: 'sessions', method: 'DELETE', path: (f) => `/sessions/${f.sessionB}` },
  'GET /clusters/active': { group: 'clusters', method: 'GET', path: '/clusters/active' },
  'GET /clusters/{clusterId}/active': {
    group: 'clusters',
    method: 'GET',
    path: '/clusters/team-b-cluster/active',
  },
  'POST /queues/{queue}/messages': {
    group: 'queues',
    method: 'POST',
    path: '/queues/team-b-jobs/messages',
    body: { payload: { n: 2 } },
  },
  'POST /queues/{queue}/receive': {
    group: 'queues',
    method: 'POST',
    path: '/queues/team-b-jobs/receive',
    body: {},
  },
  'POST /queues/{queue}/messages/{id}/ack': {
    group: 'queues',
    method: 'POST',
    path: (f) => `/queues/team-b-jobs/messages/${f.leasedB.id}/ack`,
    body: (f) => ({ receipt: f.leasedB.receipt }),
  },
  'POST /queues/{queue}/messages/{id}/nack': {
    group: 'queues',
    method: 'POST',
    path: (f) => `/queues/team-b-jobs/messages/${f.leasedB.id}/nack`,
    body: (f) => ({ receipt: f.leasedB.receipt }),
  },
  'GET /queues/{queue}': { group: 'queues', method: 'GET', path: '/queues/team-b-jobs' },
  'POST /channels/{channel}/messages': {
    group: 'channels',
    method: 'POST',
    path: '/channels/team-b-news/messages',
    body: { message: 'hi' },
  },
  'GET /channels/{channel}/messages': {
    group: 'channels',
    method: 'GET',
    path: '/channels/team-b-news/messages',
  },
  'POST /tokens': {
    group: 'tokens',
    method: 'POST',
    path: '/tokens',
    body: { identity: 'hx-new', scopes: ['admin'] },
  },
  'GET /tokens': { group: 'tokens', method: 'GET', path: '/tokens' },
  'DELETE /tokens/{id}': { group: 'tokens', method: 'DELETE', path: (f) => `/tokens/${f.tokenId.kvReader}` },
};

/** Routes naming a resource that the `teamA` token (resources `team-a-*`) may not reach in the sample. */
const RESOURCE_ROUTES = Object.keys(SAMPLES).filter(
  (key) => !key.startsWith('GET /clusters/active') && !key.includes('/tokens'),
);

// ---------------------------------------------------------------------------------------
// every authenticated route: tokens that must not pass, scopes and globs that must not stretch

const authCases: HttpCase[] = Object.entries(SAMPLES).flatMap(([route, sample]) =>
  (
    [
      ['none', 'without a token'],
      ['garbage', 'with an unknown token'],
      ['expired', 'with an expired token'],
      ['revoked', 'with a revoked token'],
    ] as const
  ).map(([as, how]) =>
    http(sample.group, 'auth', `${route} ${how}`, {
      method: sample.method,
      path: sample.path,
      body: sample.body,
      as,
      expect: UNAUTHORIZED,
    }),
  ),
);

/** A token without the route's scope: kvReader everywhere but kv reads, publisher there. */
const scopeCases: HttpCase[] = Object.entries(SAMPLES).map(([route, sample]) =>
  http(sample.group, 'scope', `${route} with a token lacking its scope`, {
    method: sample.method,
    path: sample.path,
    body: sample.body,
    as: route === 'GET /kv/{key}' ? 'publisher' : 'kvReader',
    expect: FORBIDDEN,
  }),
);

const globCases: HttpCase[] = RESOURCE_ROUTES.map((route) => {
  const sample = SAMPLES[route]!;
  return http(sample.group, 'glob', `${route} on a team-b resource with a team-a-* token`, {
    method: sample.method,
    path: sample.path,
    body: sample.body,
    as: 'teamA',
    expect: FORBIDDEN,
  });
});

// ---------------------------------------------------------------------------------------
// headers carrying (or garbling) the token

const AUTH_ROUTE = { method: 'GET', path: '/kv/hx-old' } as const;
const headerCase = (name: string, headers: Of<[string, string][]>, expect: HttpExpect = UNAUTHORIZED) =>
  http('kv', 'auth', name, { ...AUTH_ROUTE, as: 'none', headers, expect });

const headerCases: HttpCase[] = [
  headerCase('Authorization: Bearer with no token', [['authorization', 'Bearer']]),
  headerCase('Authorization: Bearer and spaces only', [['authorization', 'Bearer    ']]),
  headerCase('Authorization with an empty value', [['authorization', '']]),
  headerCase('Authorization: Basic with the admin token', (f) => [
    ['authorization', `Basic ${f.token.teamAAdmin}`],
  ]),
  headerCase('Authorization: Token scheme', (f) => [['authorization', `Token ${f.token.teamAAdmin}`]]),
  headerCase('Authorization: the token without a scheme', (f) => [['authorization', f.token.teamAAdmin]]),
  headerCase('Authorization: Bearer with two tokens', (f) => [
    ['authorization', `Bearer ${f.token.teamAAdmin} ${f.token.teamAAdmin}`],
  ]),
  headerCase('Authorization: Bearer with the token and a comma', (f) => [
    ['authorization', `Bearer ${f.token.teamAAdmin},`],
  ]),
  headerCase('Authorization: Bearer with a truncated token', (f) => [
    ['authorization', `Bearer ${f.token.teamAAdmin.slice(0, -1)}`],
  ]),
  headerCase('Authorization: Bearer with the token and one more character', (f) => [
    ['authorization', `Bearer ${f.token.teamAAdmin}x`],
  ]),
  headerCase('Authorization: Bearer with the token upper-cased', (f) => [
    ['authorization', `Bearer ${f.token.teamAAdmin.toUpperCase()}`],
  ]),
  headerCase('Authorization: Bearer with the token id instead of the token', (f) => [
    ['authorization', `Bearer ${f.tokenId.teamAAdmin}`],
  ]),
  headerCase('Authorization: Bearer with a 5,000-character token', [
    ['authorization', `Bearer kbs_${'x'.repeat(5000)}`],
  ]),
  headerCase('Authorization: Bearer with Latin-1 bytes', [
    ['authorization', 'Bearer kbs_\u00e9\u00e8\u00ff'],
  ]),
  headerCase('Authorization: Bearer with SQL in the token', [['authorization', "Bearer ' OR '1'='1"]]),
  headerCase('Authorization: Bearer with a glob as the token', [['authorization', 'Bearer *']]),
  // Gateways differ on duplicated headers (API Gateway joins them with a comma, serverless-offline
  // keeps one): cases with a valid token in one copy would test the gateway, not the service.
  headerCase('two Authorization headers, neither valid', [
    ['authorization', 'Bearer kbs_garbage'],
    ['authorization', 'Basic aHg6aHg='],
  ]),
  headerCase('X-Api-Key with an unknown token', [['x-api-key', 'kbs_garbage']]),
  headerCase('X-Api-Key empty', [['x-api-key', '']]),
  headerCase('X-Api-Key with spaces only', [['x-api-key', '   ']]),
  headerCase('X-Api-Key twice, neither valid', [
    ['x-api-key', 'kbs_garbage'],
    ['x-api-key', 'kbs_garbage2'],
  ]),
  headerCase('X-Api-Key with Bearer in it', (f) => [['x-api-key', `Bearer ${f.token.teamAAdmin}`]]),
  headerCase('a garbage Bearer is not rescued by a valid X-Api-Key', (f) => [
    ['authorization', 'Bearer kbs_garbage'],
    ['x-api-key', f.token.teamAAdmin],
  ]),
  headerCase('the token in an X-Token header', (f) => [['x-token', f.token.teamAAdmin]]),
  http('kv', 'auth', 'the token in ?token= over HTTP (WebSocket only)', {
    method: 'GET',
    path: (f) => `/kv/hx-old?token=${enc(f.token.teamAAdmin)}`,
    as: 'none',
    expect: UNAUTHORIZED,
  }),
  headerCase('the token in a cookie', (f) => [['cookie', `token=${f.token.teamAAdmin}`]]),
  headerCase('Proxy-Authorization instead of Authorization', (f) => [
    ['proxy-authorization', `Bearer ${f.token.teamAAdmin}`],
  ]),
  http('tokens', 'auth', 'POST /tokens with an expired admin token and a valid body', {
    method: 'POST',
    path: '/tokens',
    body: { identity: 'hx-expired', scopes: ['admin'] },
    as: 'expired',
    expect: UNAUTHORIZED,
  }),
  http('health', 'auth', 'GET /health needs no token, but a POST is still refused', {
    method: 'POST',
    path: '/health',
    as: 'none',
    body: { status: 'ok' },
    expect: { ...BAD(405, 'method_not_allowed'), allow: 'GET' },
  }),
];

// ---------------------------------------------------------------------------------------
// routing: unknown paths and methods (the $default route)

const notFound = (name: string, method: string, path: string, as: As = 'admin') =>
  http('routing', 'method', name, { method, path, as, expect: NOT_FOUND });
const notAllowed = (method: string, path: string, allow: string) =>
  http('routing', 'method', `${method} ${path}`, {
    method,
    path,
    body: method === 'GET' ? undefined : {},
    expect: { ...BAD(405, 'method_not_allowed'), allow },
  });

const routingCases: HttpCase[] = [
  notFound('the root path', 'GET', '/'),
  notFound('an unknown path', 'GET', '/nope'),
  notFound('an unknown path without a token', 'GET', '/admin', 'none'),
  notFound('an unknown path with an unknown token', 'GET', '/admin', 'garbage'),
  notFound('POST to an unknown path', 'POST', '/graphql'),
  notFound('a segment after /health', 'GET', '/health/x'),
  notFound('/kv without a key', 'GET', '/kv'),
  notFound('/kv/ with an empty key', 'GET', '/kv/'),
  notFound('a key with a real slash (two segments)', 'GET', '/kv/a/b'),
  notFound('a doubled slash before the key', 'GET', '/kv//hx-old'),
  notFound('a doubled slash at the start', 'GET', '//kv/hx-old'),
  notFound('/KV in capitals', 'GET', '/KV/hx-old'),
  notFound('/Health in capitals', 'GET', '/Health'),
  notFound('dot segments climbing out of /kv', 'GET', '/kv/../admin/x'),
  notFound('encoded dot segments (%2e%2e)', 'GET', '/kv/%2e%2e'),
  notFound('dot segments climbing to an unknown path', 'GET', '/kv/team-a-x/../../team-b-x'),
  notFound('an empty queue name before /messages', 'POST', '/queues//messages'),
  notFound('an extra segment after /clusters/active', 'GET', '/clusters/active/extra'),
  notFound('an extra segment after a token id', 'DELETE', '/tokens/a/b'),
  notFound('a path of 4,000 characters', 'GET', `/${'x'.repeat(4000)}`),
  notFound('a path with a NUL byte', 'GET', '/kv%00/hx-old'),
  notFound('a path with a semicolon parameter', 'GET', '/kv;x=1/hx-old'),
  notAllowed('PATCH', '/kv/hx-old', 'PUT, GET, DELETE'),
  notAllowed('POST', '/kv/hx-old', 'PUT, GET, DELETE'),
  notAllowed('OPTIONS', '/kv/hx-old', 'PUT, GET, DELETE'),
  notAllowed('GET', '/kv/hx-old/expire', 'POST'),
  notAllowed('PUT', '/kv/hx-old/incr', 'POST'),
  notAllowed('PUT', '/sessions', 'POST, GET'),
  notAllowed('PATCH', '/sessions/abc', 'GET, DELETE'),
  notAllowed('GET', '/sessions/abc/keepalive', 'POST'),
  notAllowed('DELETE', '/clusters/active', 'GET'),
  notAllowed('POST', '/clusters/team-b-cluster/active', 'GET'),
  notAllowed('GET', '/queues/hx-jobs/messages', 'POST'),
  notAllowed('GET', '/queues/hx-jobs/receive', 'POST'),
  notAllowed('DELETE', '/queues/hx-jobs', 'GET'),
  notAllowed('GET', '/queues/hx-jobs/messages/1/ack', 'POST'),
  notAllowed('PUT', '/queues/hx-jobs/messages/1/nack', 'POST'),
  notAllowed('DELETE', '/channels/hx-news/messages', 'POST, GET'),
  notAllowed('PUT', '/tokens', 'POST, GET'),
  notAllowed('GET', '/tokens/abc', 'DELETE'),
  notAllowed('DELETE', '/health', 'GET'),
];

// ---------------------------------------------------------------------------------------
// kv

const kv = (attack: Attack, name: string, rest: Omit<HttpCase, 'kind' | 'group' | 'attack' | 'name'>) =>
  http('kv', attack, name, rest);
const putOld = (
  attack: Attack,
  name: string,
  body: Body,
  expect: HttpExpect = BAD_REQUEST,
  contentType?: string | null,
) => kv(attack, name, { method: 'PUT', path: '/kv/hx-old', body, expect, contentType });

const kvCases: HttpCase[] = [
  // malformed and truncated JSON
  putOld('json', 'truncated after the colon', '{"value": '),
  putOld('json', 'truncated inside a string', '{"value": "ol'),
  putOld('json', 'truncated inside a nested object', '{"value": {"a": [1, 2'),
  putOld('json', 'an unclosed object', '{"value": 1'),
  putOld('json', 'a trailing comma', '{"value": 1,}'),
  putOld('json', 'single quotes', "{'value': 1}"),
  putOld('json', 'an unquoted key', '{value: 1}'),
  putOld('json', 'a comment', '{"value": 1 /* note */}'),
  putOld('json', 'NaN as a literal', '{"value": NaN}'),
  putOld('json', 'Infinity as a literal', '{"value": Infinity}'),
  putOld('json', 'two JSON documents', '{"value": 1}{"value": 2}'),
  putOld('json', 'a NUL byte after the JSON', '{"value": 1}\u0000'),
  putOld('json', 'a byte-order mark before the JSON', '\ufeff{"value": 1}'),
  putOld('json', 'bytes that are not UTF-8', Buffer.from([0xff, 0xfe, 0x7b, 0x7d])),
  putOld('json', 'an empty body', ''),
  putOld('json', 'whitespace only', '   \n\t '),
  putOld('json', 'the JSON null', 'null'),
  putOld('json', 'an array', '[{"value": 1}]'),
  putOld('json', 'a string', '"value"'),
  putOld('json', 'a number', '42'),
  putOld('json', 'an object without value', '{}'),
  putOld('json', 'a lone surrogate escaped in the value', '{"value": "\\ud800"}'),
  putOld('json', 'a lone surrogate escaped in a nested key', '{"value": {"\\udc00": 1}}'),
  // content types
  putOld('content-type', 'text/plain', '{"value": 1}', BAD_REQUEST, 'text/plain'),
  putOld('content-type', 'a form', 'value=1', BAD_REQUEST, 'application/x-www-form-urlencoded'),
  putOld(
    'content-type',
    'multipart',
    '--x\r\n\r\n{"value":1}\r\n--x--',
    BAD_REQUEST,
    'multipart/form-data; boundary=x',
  ),
  putOld('content-type', 'application/xml', '<value>1</value>', BAD_REQUEST, 'application/xml'),
  putOld('content-type', 'application/jsonp', '{"value": 1}', BAD_REQUEST, 'application/jsonp'),
  putOld('content-type', 'text/json', '{"value": 1}', BAD_REQUEST, 'text/json'),
  kv('content-type', 'JSON then text/plain as a second content-type header', {
    method: 'PUT',
    path: '/kv/hx-old',
    body: '{"value": 1}',
    headers: [['content-type', 'text/plain']],
    expect: BAD_REQUEST,
  }),
  kv('content-type', 'gzip-encoded JSON (not decoded)', {
    method: 'PUT',
    path: '/kv/hx-old',
    // The gzip magic number and header: never valid JSON, whatever follows.
    body: Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]),
    headers: [['content-encoding', 'gzip']],
    expect: BAD_REQUEST,
  }),
  // sizes
  putOld('size', 'a value one byte over 256 KiB', `{"value": ${jsonString(MAX_VALUE_BYTES + 1)}}`, TOO_LARGE),
  putOld(
    'size',
    'a 1.2 MB body (refused before parsing)',
    `{"value": "${'x'.repeat(1_200_000)}"}`,
    TOO_LARGE,
  ),
  putOld('size', 'a 1.2 MB body that is not even JSON', `{"value": "${'x'.repeat(1_200_000)}`, TOO_LARGE),
  putOld('size', 'a 1.2 MB body as text/plain', 'x'.repeat(1_200_000), TOO_LARGE, 'text/plain'),
  kv('size', 'a body over the gateway limit of 10 MB', {
    method: 'PUT',
    path: '/kv/hx-old',
    body: `{"value": "${'x'.repeat(10 * 1024 * 1024 + 16)}"}`,
    expect: {
      status: 413,
      gateway: 'serverless-offline (like API Gateway) refuses bodies over 10 MB itself',
    },
  }),
  putOld('size', 'arrays nested 10,000 deep', `{"value": ${nested(10_000)}}`),
  putOld('size', 'objects nested 10,000 deep', `{"value": ${nestedObject(10_000)}}`),
  putOld('size', 'arrays nested 130 deep (one level past the limit)', `{"value": ${nested(130)}}`),
  // numbers
  putOld('number', 'ttl 1e400 (not finite once parsed)', '{"value": 1, "ttl": 1e400}'),
  putOld('number', 'ttl -1e400', '{"value": 1, "ttl": -1e400}'),
  putOld('number', 'ttl -0', '{"value": 1, "ttl": -0}'),
  putOld('number', 'ttl 0', '{"value": 1, "ttl": 0}'),
  putOld('number', 'ttl 2^64', '{"value": 1, "ttl": 18446744073709551616}'),
  putOld('number', 'ttl "NaN" as text', '{"value": 1, "ttl": "NaN"}'),
  putOld('number', 'ttl "60" as text', '{"value": 1, "ttl": "60"}'),
  putOld('number', 'ttl 1e-400 (zero once parsed)', '{"value": 1, "ttl": 1e-400}'),
  putOld('number', 'ttl as a hex literal', '{"value": 1, "ttl": 0x10}'),
  putOld('number', 'ttl with a leading plus', '{"value": 1, "ttl": +5}'),
  putOld('number', 'a value of 1e400', '{"value": 1e400}'),
  putOld('number', 'a value holding -1e400 deep inside', '{"value": {"a": [1, {"b": -1e400}]}}'),
  kv('number', 'incr by 2^64', {
    method: 'POST',
    path: '/kv/hx-count/incr',
    body: '{"by": 18446744073709551616}',
    expect: BAD_REQUEST,
  }),
  kv('number', 'incr by 1e400', {
    method: 'POST',
    path: '/kv/hx-count/incr',
    body: '{"by": 1e400}',
    expect: BAD_REQUEST,
  }),
  kv('number', 'incr by 0.5', {
    method: 'POST',
    path: '/kv/hx-count/incr',
    body: '{"by": 0.5}',
    expect: BAD_REQUEST,
  }),
  kv('number', 'incr by "1" as text', {
    method: 'POST',
    path: '/kv/hx-count/incr',
    body: '{"by": "1"}',
    expect: BAD_REQUEST,
  }),
  kv('number', 'incr past the largest safe integer', {
    method: 'POST',
    path: '/kv/hx-count/incr',
    body: '{"by": 9007199254740991}',
    expect: CONFLICT,
  }),
  kv('number', 'expire with ttl 1e400', {
    method: 'POST',
    path: '/kv/hx-old/expire',
    body: '{"ttl": 1e400}',
    expect: BAD_REQUEST,
  }),
  kv('number', 'expire with ttl -0', {
    method: 'POST',
    path: '/kv/hx-old/expire',
    body: '{"ttl": -0}',
    expect: BAD_REQUEST,
  }),
  kv('number', 'expire with ttl "null" as text', {
    method: 'POST',
    path: '/kv/hx-old/expire',
    body: '{"ttl": "null"}',
    expect: BAD_REQUEST,
  }),
  kv('state', 'incr of a string value', {
    method: 'POST',
    path: '/kv/hx-old/incr',
    body: {},
    expect: CONFLICT,
  }),
  kv('state', 'nx on an existing key', {
    method: 'PUT',
    path: '/kv/hx-old',
    body: { value: 2, nx: true },
    expect: CONFLICT,
  }),
  kv('state', 'xx on a missing key', {
    method: 'PUT',
    path: '/kv/hx-missing',
    body: { value: 2, xx: true },
    expect: CONFLICT,
  }),
  kv('state', 'nx and xx together', {
    method: 'PUT',
    path: '/kv/hx-old',
    body: { value: 2, nx: true, xx: true },
    expect: BAD_REQUEST,
  }),
  kv('state', 'expire a missing key', {
    method: 'POST',
    path: '/kv/hx-missing/expire',
    body: { ttl: 5 },
    expect: NOT_FOUND,
  }),
  kv('state', 'delete a missing key', { method: 'DELETE', path: '/kv/hx-missing', expect: NOT_FOUND }),
  // prototype keys
  putOld('prototype', '__proto__ as a field', '{"value": 1, "__proto__": {"admin": true}}'),
  putOld('prototype', '__proto__ holding the value', '{"__proto__": {"value": 1}}'),
  putOld(
    'prototype',
    'constructor.prototype as a field',
    '{"value": 1, "constructor": {"prototype": {"admin": true}}}',
  ),
  putOld('prototype', 'prototype as a field', '{"value": 1, "prototype": {}}'),
  putOld('prototype', 'hasOwnProperty as a field', '{"value": 1, "hasOwnProperty": 1}'),
  putOld('field', 'an unknown field', { value: 1, colour: 'red' }),
  putOld('field', 'nx as a string', { value: 1, nx: 'true' }),
  putOld('field', 'xx as a number', { value: 1, xx: 1 }),
  kv('field', 'expire without ttl', {
    method: 'POST',
    path: '/kv/hx-old/expire',
    body: {},
    expect: BAD_REQUEST,
  }),
  kv('field', 'expire with an unknown field', {
    method: 'POST',
    path: '/kv/hx-old/expire',
    body: { ttl: 5, persist: true },
    expect: BAD_REQUEST,
  }),
  kv('field', 'DELETE with a JSON body', {
    method: 'DELETE',
    path: '/kv/hx-old',
    body: { value: 1 },
    expect: BAD_REQUEST,
  }),
  kv('query', 'GET with a query parameter', {
    method: 'GET',
    path: '/kv/hx-old?version=1',
    expect: BAD_REQUEST,
  }),
  kv('query', 'PUT with a query parameter', {
    method: 'PUT',
    path: '/kv/hx-old?ttl=1',
    body: { value: 2 },
    expect: BAD_REQUEST,
  }),
  // names
  kv('name', 'a key of 256 bytes', {
    method: 'PUT',
    path: `/kv/${NAME_256}`,
    body: { value: 1 },
    expect: BAD_REQUEST,
  }),
  kv('name', 'a key of 258 bytes in 86 characters', {
    method: 'PUT',
    path: `/kv/${enc(EURO_258)}`,
    body: { value: 1 },
    expect: BAD_REQUEST,
  }),
  kv('name', 'a key of 255 bytes plus one encoded byte', {
    method: 'GET',
    path: `/kv/${NAME_255}%41`,
    expect: BAD_REQUEST,
  }),
  kv('name', 'a key with a NUL byte', {
    method: 'PUT',
    path: '/kv/hx%00old',
    body: { value: 1 },
    expect: BAD_REQUEST,
  }),
  kv('name', 'a key with a newline', {
    method: 'PUT',
    path: '/kv/hx%0Aold',
    body: { value: 1 },
    expect: BAD_REQUEST,
  }),
  kv('name', 'a key with a carriage return', { method: 'GET', path: '/kv/hx%0Dold', expect: BAD_REQUEST }),
  kv('name', 'a key with an escape character', { method: 'GET', path: '/kv/hx%1Bold', expect: BAD_REQUEST }),
  kv('name', 'a key with DEL', { method: 'DELETE', path: '/kv/hx%7Fold', expect: BAD_REQUEST }),
  kv('name', 'a key with a C1 control (U+0085)', {
    method: 'PUT',
    path: '/kv/hx%C2%85old',
    body: { value: 1 },
    expect: BAD_REQUEST,
  }),
  kv('name', 'a key that is one NUL byte', {
    method: 'POST',
    path: '/kv/%00/incr',
    body: {},
    expect: BAD_REQUEST,
  }),
  kv('encoding', 'a lone surrogate in a key, percent-encoded', {
    method: 'PUT',
    path: '/kv/hx-%ED%A0%80',
    body: { value: 1 },
    expect: { status: 400, gateway: 'the gateway refuses a path that is not valid UTF-8 once decoded' },
  }),
  kv('encoding', 'an overlong UTF-8 encoding of a slash', {
    method: 'GET',
    path: '/kv/hx-%C0%AFx',
    expect: { status: 400, gateway: 'the gateway refuses a path that is not valid UTF-8 once decoded' },
  }),
  kv('encoding', 'a malformed percent escape', {
    method: 'GET',
    path: '/kv/hx-%zz',
    expect: { status: 400, gateway: 'the gateway refuses a malformed percent escape' },
  }),
  kv('encoding', 'a lone % at the end', {
    method: 'DELETE',
    path: '/kv/hx-old%',
    expect: { status: 400, gateway: 'the gateway refuses a malformed percent escape' },
  }),
  kv('encoding', 'an encoded NUL in a key written by incr', {
    method: 'POST',
    path: '/kv/%00hx/incr',
    body: {},
    expect: BAD_REQUEST,
  }),
];

// glob escapes on kv with the team-a-* token
const teamAKey = (name: string, method: string, key: string, expect: HttpExpect = FORBIDDEN) =>
  kv('glob', `team-a-* token: ${name}`, {
    method,
    path: `/kv/${key}${method === 'POST' ? '/incr' : ''}`,
    body: method === 'PUT' ? { value: 'x' } : method === 'POST' ? {} : undefined,
    as: 'teamA',
    expect,
  });

const EURO_255 = '€'.repeat(85);

/** Names at the limit are names: refused only because nothing is stored under them. */
const boundaryCases: HttpCase[] = [
  kv('name', 'GET a key of 255 bytes', { method: 'GET', path: `/kv/${NAME_255}`, expect: NOT_FOUND }),
  kv('name', 'GET a key of 255 bytes in 85 characters', {
    method: 'GET',
    path: `/kv/${enc(EURO_255)}`,
    expect: NOT_FOUND,
  }),
  kv('name', 'DELETE a key of 255 bytes', { method: 'DELETE', path: `/kv/${NAME_255}`, expect: NOT_FOUND }),
  kv('name', 'expire a key of 255 bytes', {
    method: 'POST',
    path: `/kv/${NAME_255}/expire`,
    body: { ttl: 5 },
    expect: NOT_FOUND,
  }),
  http('sessions', 'name', 'GET a session id of 255 bytes', {
    method: 'GET',
    path: `/sessions/${NAME_255}`,
    expect: NOT_FOUND,
  }),
  http('sessions', 'name', 'DELETE a session id of 255 bytes', {
    method: 'DELETE',
    path: `/sessions/${NAME_255}`,
    expect: NOT_FOUND,
  }),
  http('tokens', 'name', 'revoke a token id of 255 bytes', {
    method: 'DELETE',
    path: `/tokens/${NAME_255}`,
    expect: NOT_FOUND,
  }),
  http('queues', 'name', 'ack in a queue of 255 bytes', {
    method: 'POST',
    path: `/queues/${NAME_255}/messages/hx-none/ack`,
    body: { receipt: 'r' },
    expect: NOT_FOUND,
  }),
  // hx-old exists: were a name read as a pattern, these would find (or delete) it.
  kv('glob', 'GET hx-* reads a key named hx-*, not hx-old', {
    method: 'GET',
    path: '/kv/hx-*',
    expect: NOT_FOUND,
  }),
  kv('glob', 'DELETE hx-* deletes nothing', { method: 'DELETE', path: '/kv/hx-*', expect: NOT_FOUND }),
  kv('glob', 'GET hx-??? (encoded) reads a key named hx-???', {
    method: 'GET',
    path: '/kv/hx-%3F%3F%3F',
    expect: NOT_FOUND,
  }),
  kv('glob', 'GET hx-[o]ld reads a key named hx-[o]ld', {
    method: 'GET',
    path: '/kv/hx-%5Bo%5Dld',
    expect: NOT_FOUND,
  }),
  kv('glob', 'GET hx-.* reads a key named hx-.*', { method: 'GET', path: '/kv/hx-.*', expect: NOT_FOUND }),
  kv('glob', 'GET hx-% reads a key named hx-% (SQL LIKE)', {
    method: 'GET',
    path: '/kv/hx-%25',
    expect: NOT_FOUND,
  }),
  kv('glob', 'GET hx-_ld reads a key named hx-_ld (SQL LIKE)', {
    method: 'GET',
    path: '/kv/hx-_ld',
    expect: NOT_FOUND,
  }),
  kv('glob', 'expire hx-* touches nothing', {
    method: 'POST',
    path: '/kv/hx-*/expire',
    body: { ttl: 1 },
    expect: NOT_FOUND,
  }),
  http('queues', 'glob', 'ack in queue hx-* (not hx-jobs)', {
    method: 'POST',
    path: '/queues/hx-*/messages/hx-none/ack',
    body: { receipt: 'r' },
    expect: NOT_FOUND,
  }),
  http('sessions', 'glob', 'GET session * (not any session)', {
    method: 'GET',
    path: '/sessions/*',
    expect: NOT_FOUND,
  }),
  http('tokens', 'glob', 'revoke token * (not every token)', {
    method: 'DELETE',
    path: '/tokens/*',
    expect: NOT_FOUND,
  }),
];

const kvGlobCases: HttpCase[] = [
  teamAKey('TEAM-A-x in capitals', 'PUT', 'TEAM-A-x'),
  teamAKey('team-a without the dash', 'PUT', 'team-a'),
  teamAKey('team-a_x with an underscore', 'PUT', 'team-a_x'),
  teamAKey('a leading space', 'GET', '%20team-a-x'),
  teamAKey('a Unicode hyphen (U+2010)', 'PUT', `team-a${enc('\u2010')}x`),
  teamAKey('a fullwidth hyphen (U+FF0D)', 'GET', `team-a${enc('\uff0d')}x`),
  teamAKey('a literal * as the key', 'PUT', '*'),
  teamAKey('an encoded * as the key', 'GET', '%2A'),
  teamAKey('a literal ? as the key', 'PUT', '%3F'),
  teamAKey('a regex .* as the key', 'GET', '.*'),
  teamAKey('an encoded slash and dots back into team-a', 'GET', 'team-b-x%2F..%2Fteam-a-x'),
  teamAKey('encoded dots before team-b', 'PUT', '..%2Fteam-b-x'),
  teamAKey('dot segments from team-a into team-b', 'GET', 'team-a-x/../team-b-x'),
  teamAKey('a key with team-a- in the middle', 'POST', 'x-team-a-y'),
  teamAKey('a key ending in team-a-', 'DELETE', 'b-team-a-'),
  teamAKey('a team-a key with a NUL byte', 'PUT', 'team-a-%00', BAD_REQUEST),
  kv('glob', `a token whose pattern has ${MAX_GLOB_STARS} stars, on a 255-byte name that almost matches`, {
    method: 'GET',
    path: `/kv/team-a-${'a'.repeat(255 - 'team-a-'.length)}`,
    as: 'starry',
    expect: FORBIDDEN,
  }),
  kv('glob', `a ${MAX_GLOB_STARS}-star pattern on a 254-byte name: no match, no time`, {
    method: 'GET',
    path: `/kv/team-a-${'a'.repeat(254 - 'team-a-'.length)}`,
    as: 'starry',
    expect: FORBIDDEN,
  }),
];

// ---------------------------------------------------------------------------------------
// sessions and clusters

const session = (
  attack: Attack,
  name: string,
  body: Body,
  expect: HttpExpect = BAD_REQUEST,
  as: As = 'admin',
) =>
  http('sessions', attack, `POST /sessions ${name}`, { method: 'POST', path: '/sessions', body, expect, as });

const sessionCases: HttpCase[] = [
  session('field', 'without clusterId', { userId: 'u' }),
  session('name', 'with an empty clusterId', { clusterId: '' }),
  session('field', 'with a numeric clusterId', { clusterId: 7 }),
  session('field', 'with clusterId null', { clusterId: null }),
  session('field', 'with clusterId an array', { clusterId: ['team-a-c'] }),
  session('name', 'with a 256-byte clusterId', { clusterId: NAME_256 }),
  session('name', 'with a 258-byte clusterId of 86 characters', { clusterId: EURO_258 }),
  session('name', 'with a control character in clusterId', { clusterId: 'team-a-\u0007' }),
  session('name', 'with a newline in clusterId', { clusterId: 'team-a-c\nX-Injected: 1' }),
  session('name', 'with a lone surrogate in clusterId', '{"clusterId": "team-a-\\ud800"}'),
  session(
    'name',
    'with a lone surrogate in correlationId',
    '{"clusterId": "hx-c", "correlationId": "\\udfff"}',
  ),
  session('field', 'with data an array', { clusterId: 'hx-c', data: [1] }),
  session('field', 'with data a string', { clusterId: 'hx-c', data: 'x' }),
  session('field', 'with data null', { clusterId: 'hx-c', data: null }),
  session(
    'size',
    'with data over 256 KiB',
    `{"clusterId": "hx-c", "data": {"x": ${jsonString(MAX_VALUE_BYTES)}}}`,
    TOO_LARGE,
  ),
  session('size', 'with data nested 10,000 deep', `{"clusterId": "hx-c", "data": {"x": ${nested(10_000)}}}`),
  session('number', 'with ttl 1e400', '{"clusterId": "hx-c", "ttl": 1e400}'),
  session('number', 'with ttl -0', '{"clusterId": "hx-c", "ttl": -0}'),
  session('number', 'with ttl 2^64', '{"clusterId": "hx-c", "ttl": 18446744073709551616}'),
  session('number', 'with data holding 1e400', '{"clusterId": "hx-c", "data": {"n": 1e400}}'),
  session('field', 'with a userId of 2,000 characters', { clusterId: 'hx-c', userId: 'u'.repeat(2000) }),
  session('field', 'with a serviceIdentity of 2,000 characters', {
    clusterId: 'hx-c',
    serviceIdentity: 's'.repeat(2000),
  }),
  session('name', 'with a control character in userId', { clusterId: 'hx-c', userId: 'u\u0000' }),
  session('name', 'with a control character in serviceIdentity', {
    clusterId: 'hx-c',
    serviceIdentity: 'svc\u0085',
  }),
  session('name', 'with a lone surrogate in userId', '{"clusterId": "hx-c", "userId": "\\ud800"}'),
  session('field', 'with a numeric userId', { clusterId: 'hx-c', userId: 7 }),
  session('field', 'with an unknown field', { clusterId: 'hx-c', owner: 'me' }),
  session('prototype', 'with __proto__', '{"clusterId": "hx-c", "__proto__": {"admin": true}}'),
  session('prototype', 'with constructor', '{"clusterId": "hx-c", "constructor": {"prototype": {}}}'),
  session('json', 'truncated', '{"clusterId": "hx-'),
  session('json', 'as an array', '[{"clusterId": "hx-c"}]'),
  session(
    'glob',
    'for a cluster that is a glob, with a team-a-* token',
    { clusterId: '*' },
    FORBIDDEN,
    'teamA',
  ),
  session('glob', 'for TEAM-A-c, with a team-a-* token', { clusterId: 'TEAM-A-c' }, FORBIDDEN, 'teamA'),
  http('sessions', 'content-type', 'POST /sessions as text/plain', {
    method: 'POST',
    path: '/sessions',
    body: '{"clusterId": "hx-c"}',
    contentType: 'text/plain',
    expect: BAD_REQUEST,
  }),
  http('sessions', 'size', 'POST /sessions with a 1.2 MB body', {
    method: 'POST',
    path: '/sessions',
    body: `{"clusterId": "hx-c", "data": {"x": "${'x'.repeat(1_200_000)}"}}`,
    expect: TOO_LARGE,
  }),
  http('sessions', 'query', 'GET /sessions with no query', {
    method: 'GET',
    path: '/sessions',
    expect: BAD_REQUEST,
  }),
  http('sessions', 'query', 'GET /sessions with both clusterId and correlationId', {
    method: 'GET',
    path: '/sessions?clusterId=hx-c&correlationId=x',
    expect: BAD_REQUEST,
  }),
  http('sessions', 'query', 'GET /sessions with an empty clusterId', {
    method: 'GET',
    path: '/sessions?clusterId=',
    expect: BAD_REQUEST,
  }),
  http('sessions', 'query', 'GET /sessions with an unknown parameter', {
    method: 'GET',
    path: '/sessions?cluster=hx-c',
    expect: BAD_REQUEST,
  }),
  http('sessions', 'query', 'GET /sessions with a 256-byte clusterId', {
    method: 'GET',
    path: `/sessions?clusterId=${NAME_256}`,
    expect: BAD_REQUEST,
  }),
  http('sessions', 'query', 'GET /sessions with a control character in clusterId', {
    method: 'GET',
    path: '/sessions?clusterId=hx%01c',
    expect: BAD_REQUEST,
  }),
  http('sessions', 'glob', 'GET /sessions?clusterId=* with a team-a-* token', {
    method: 'GET',
    path: '/sessions?clusterId=*',
    as: 'teamA',
    expect: FORBIDDEN,
  }),
  http('sessions', 'state', 'GET an unknown session', {
    method: 'GET',
    path: '/sessions/hx-no-such-session',
    expect: NOT_FOUND,
  }),
  http('sessions', 'state', 'keep an unknown session alive', {
    method: 'POST',
    path: '/sessions/hx-no-such-session/keepalive',
    body: {},
    expect: NOT_FOUND,
  }),
  http('sessions', 'state', 'DELETE an unknown session', {
    method: 'DELETE',
    path: '/sessions/hx-no-such-session',
    expect: NOT_FOUND,
  }),
  http('sessions', 'name', 'GET a session id of 256 bytes', {
    method: 'GET',
    path: `/sessions/${NAME_256}`,
    expect: BAD_REQUEST,
  }),
  http('sessions', 'name', 'DELETE a session id with a NUL byte', {
    method: 'DELETE',
    path: '/sessions/%00',
    expect: BAD_REQUEST,
  }),
  http('sessions', 'number', 'keepalive with ttl 1e400', {
    method: 'POST',
    path: (f) => `/sessions/${f.sessionA}/keepalive`,
    body: '{"ttl": 1e400}',
    expect: BAD_REQUEST,
  }),
  http('sessions', 'number', 'keepalive with ttl 0', {
    method: 'POST',
    path: (f) => `/sessions/${f.sessionA}/keepalive`,
    body: { ttl: 0 },
    expect: BAD_REQUEST,
  }),
  http('sessions', 'field', 'keepalive with an unknown field', {
    method: 'POST',
    path: (f) => `/sessions/${f.sessionA}/keepalive`,
    body: { ttl: 30, data: {} },
    expect: BAD_REQUEST,
  }),
  http('sessions', 'json', 'keepalive with truncated JSON', {
    method: 'POST',
    path: (f) => `/sessions/${f.sessionA}/keepalive`,
    body: '{"ttl": 3',
    expect: BAD_REQUEST,
  }),
  http('clusters', 'query', 'GET /clusters/active?limit=0', {
    method: 'GET',
    path: '/clusters/active?limit=0',
    expect: BAD_REQUEST,
  }),
  http('clusters', 'query', 'GET /clusters/active?limit=1001', {
    method: 'GET',
    path: '/clusters/active?limit=1001',
    expect: BAD_REQUEST,
  }),
  http('clusters', 'query', 'GET /clusters/active?limit=-1', {
    method: 'GET',
    path: '/clusters/active?limit=-1',
    expect: BAD_REQUEST,
  }),
  http('clusters', 'query', 'GET /clusters/active?limit=1e400', {
    method: 'GET',
    path: '/clusters/active?limit=1e400',
    expect: BAD_REQUEST,
  }),
  http('clusters', 'query', 'GET /clusters/active?cursor= a forged cursor', {
    method: 'GET',
    path: '/clusters/active?cursor=%27%3B%20DROP%20TABLE%20sessions',
    expect: BAD_REQUEST,
  }),
  http('clusters', 'name', 'GET /clusters/{id}/active with a 256-byte id', {
    method: 'GET',
    path: `/clusters/${NAME_256}/active`,
    expect: BAD_REQUEST,
  }),
  http('clusters', 'name', 'GET /clusters/{id}/active with a control character', {
    method: 'GET',
    path: '/clusters/hx%1Fc/active',
    expect: BAD_REQUEST,
  }),
  http('clusters', 'glob', 'GET /clusters/*/active with a team-a-* token', {
    method: 'GET',
    path: '/clusters/*/active',
    as: 'teamA',
    expect: FORBIDDEN,
  }),
  http('clusters', 'glob', 'GET /clusters/{id}/active with an encoded slash escaping team-a', {
    method: 'GET',
    path: '/clusters/team-b-cluster%2F..%2Fteam-a-c/active',
    as: 'teamA',
    expect: FORBIDDEN,
  }),
];

// ---------------------------------------------------------------------------------------
// queues

const queue = (attack: Attack, name: string, rest: Omit<HttpCase, 'kind' | 'group' | 'attack' | 'name'>) =>
  http('queues', attack, name, rest);
const send = (attack: Attack, name: string, body: Body, expect: HttpExpect = BAD_REQUEST) =>
  queue(attack, `send ${name}`, { method: 'POST', path: '/queues/hx-jobs/messages', body, expect });
const receive = (attack: Attack, name: string, body: Body, expect: HttpExpect = BAD_REQUEST) =>
  queue(attack, `receive ${name}`, { method: 'POST', path: '/queues/hx-jobs/receive', body, expect });
const ackB = (attack: Attack, name: string, body: Of<Body>, expect: HttpExpect, action = 'ack') =>
  queue(attack, `${action} ${name}`, {
    method: 'POST',
    path: (f) => `/queues/team-b-jobs/messages/${f.leasedB.id}/${action}`,
    body,
    expect,
  });

const queueCases: HttpCase[] = [
  send('field', 'without payload', { delay: 1 }),
  send('field', 'with an unknown field', { payload: 1, priority: 9 }),
  send('number', 'with delay 1e400', '{"payload": 1, "delay": 1e400}'),
  send('number', 'with delay -1', { payload: 1, delay: -1 }),
  send(
    'number',
    'with delay -1e-400 (minus zero once parsed) and a payload of 1e400',
    '{"payload": 1e400, "delay": -1e-400}',
  ),
  send('number', 'with delay over seven days', { payload: 1, delay: 604_801 }),
  send('number', 'with delay "5" as text', { payload: 1, delay: '5' }),
  send('name', 'with an empty dedupId', { payload: 1, dedupId: '' }),
  send('name', 'with a 256-byte dedupId', { payload: 1, dedupId: NAME_256 }),
  send('name', 'with a control character in dedupId', { payload: 1, dedupId: 'a\u0000b' }),
  send('size', 'with a payload over 256 KiB', `{"payload": ${jsonString(MAX_VALUE_BYTES + 1)}}`, TOO_LARGE),
  send('size', 'with a payload nested 10,000 deep', `{"payload": ${nested(10_000)}}`),
  send('prototype', 'with __proto__', '{"payload": 1, "__proto__": {"delay": 0}}'),
  send('json', 'truncated', '{"payload": {"n": '),
  send('json', 'as null', 'null'),
  queue('content-type', 'send as text/plain', {
    method: 'POST',
    path: '/queues/hx-jobs/messages',
    body: '{"payload": 1}',
    contentType: 'text/plain',
    expect: BAD_REQUEST,
  }),
  queue('name', 'send to a 256-byte queue', {
    method: 'POST',
    path: `/queues/${NAME_256}/messages`,
    body: { payload: 1 },
    expect: BAD_REQUEST,
  }),
  queue('name', 'send to a queue with a NUL byte', {
    method: 'POST',
    path: '/queues/hx%00jobs/messages',
    body: { payload: 1 },
    expect: BAD_REQUEST,
  }),
  queue('glob', 'send to * with a team-a-* token', {
    method: 'POST',
    path: '/queues/*/messages',
    body: { payload: 1 },
    as: 'teamA',
    expect: FORBIDDEN,
  }),
  queue('glob', 'send to an encoded slash escaping team-a', {
    method: 'POST',
    path: '/queues/team-b-jobs%2F..%2Fteam-a-jobs/messages',
    body: { payload: 1 },
    as: 'teamA',
    expect: FORBIDDEN,
  }),
  receive('number', 'max 0', { max: 0 }),
  receive('number', 'max 101', { max: 101 }),
  receive('number', 'max 1.5', { max: 1.5 }),
  receive('number', 'max 2^64', '{"max": 18446744073709551616}'),
  receive('number', 'max "1" as text', { max: '1' }),
  receive('number', 'wait 21', { wait: 21 }),
  receive('number', 'wait -1', { wait: -1 }),
  receive('number', 'wait 1e400', '{"wait": 1e400}'),
  receive('number', 'visibilityTimeout 0', { visibilityTimeout: 0 }),
  receive('number', 'visibilityTimeout -0', '{"visibilityTimeout": -0}'),
  receive('number', 'visibilityTimeout over 12 hours', { visibilityTimeout: 43_201 }),
  receive('field', 'with an unknown field', { max: 1, peek: true }),
  receive('json', 'with a trailing comma', '{"max": 1,}'),
  ackB('state', 'with a garbage receipt', { receipt: 'not-the-receipt' }, CONFLICT),
  ackB(
    'state',
    'with the receipt of another message',
    (f) => ({ receipt: `${f.leasedB.receipt}x` }),
    CONFLICT,
  ),
  ackB('field', 'without a receipt', {}, BAD_REQUEST),
  ackB('field', 'with an empty receipt', { receipt: '' }, BAD_REQUEST),
  ackB('field', 'with a numeric receipt', { receipt: 1 }, BAD_REQUEST),
  ackB('field', 'with a 2,000-character receipt', { receipt: 'r'.repeat(2000) }, BAD_REQUEST),
  ackB(
    'prototype',
    'with __proto__ and the right receipt',
    (f) => `{"receipt": "${f.leasedB.receipt}", "__proto__": {}}`,
    BAD_REQUEST,
  ),
  ackB('state', 'with a garbage receipt', { receipt: 'not-the-receipt' }, CONFLICT, 'nack'),
  ackB(
    'number',
    'with delay 1e400 and the right receipt',
    (f) => `{"receipt": "${f.leasedB.receipt}", "delay": 1e400}`,
    BAD_REQUEST,
    'nack',
  ),
  ackB(
    'number',
    'with delay -1 and the right receipt',
    (f) => ({ receipt: f.leasedB.receipt, delay: -1 }),
    BAD_REQUEST,
    'nack',
  ),
  ackB(
    'field',
    'with requeue, unknown, and the right receipt',
    (f) => ({ receipt: f.leasedB.receipt, requeue: false }),
    BAD_REQUEST,
    'nack',
  ),
  queue('state', 'ack an unknown message', {
    method: 'POST',
    path: '/queues/hx-jobs/messages/hx-no-such-message/ack',
    body: { receipt: 'r' },
    expect: NOT_FOUND,
  }),
  queue('state', "ack a message through another queue's path", {
    method: 'POST',
    path: (f) => `/queues/hx-jobs/messages/${f.leasedB.id}/ack`,
    body: (f) => ({ receipt: f.leasedB.receipt }),
    expect: NOT_FOUND,
  }),
  queue('glob', "ack team-b's message through a team-a queue path, with a team-a-* token", {
    method: 'POST',
    path: (f) => `/queues/team-a-jobs/messages/${f.leasedB.id}/ack`,
    body: (f) => ({ receipt: f.leasedB.receipt }),
    as: 'teamA',
    expect: NOT_FOUND,
  }),
  queue('name', 'ack a message id with a NUL byte', {
    method: 'POST',
    path: '/queues/hx-jobs/messages/%00/ack',
    body: { receipt: 'r' },
    expect: BAD_REQUEST,
  }),
  queue('name', 'stats of a 256-byte queue', {
    method: 'GET',
    path: `/queues/${NAME_256}`,
    expect: BAD_REQUEST,
  }),
  queue('query', 'stats with a query parameter', {
    method: 'GET',
    path: '/queues/hx-jobs?verbose=1',
    expect: BAD_REQUEST,
  }),
];

// ---------------------------------------------------------------------------------------
// channels

const publish = (attack: Attack, name: string, body: Body, expect: HttpExpect = BAD_REQUEST) =>
  http('channels', attack, `publish ${name}`, {
    method: 'POST',
    path: '/channels/hx-news/messages',
    body,
    expect,
  });
const history = (attack: Attack, name: string, query: string, expect: HttpExpect = BAD_REQUEST) =>
  http('channels', attack, `history ${name}`, {
    method: 'GET',
    path: `/channels/hx-news/messages?${query}`,
    expect,
  });

const channelCases: HttpCase[] = [
  publish('field', 'without message', {}),
  publish('field', 'with an unknown field', { message: 1, ttl: 5 }),
  publish('number', 'a message of 1e400', '{"message": 1e400}'),
  publish('number', 'a message holding -1e400', '{"message": {"x": [-1e400]}}'),
  publish('size', 'a message over 256 KiB', `{"message": ${jsonString(MAX_VALUE_BYTES + 1)}}`, TOO_LARGE),
  publish('size', 'a message nested 10,000 deep', `{"message": ${nested(10_000)}}`),
  publish('size', 'a 1.2 MB body', `{"message": "${'x'.repeat(1_200_000)}"}`, TOO_LARGE),
  publish('json', 'truncated', '{"message": [1, 2'),
  publish('json', 'a lone surrogate in the message', '{"message": "\\udbff"}'),
  publish('prototype', 'with __proto__', '{"message": 1, "__proto__": {"x": 1}}'),
  publish('prototype', 'with constructor', '{"message": 1, "constructor": {}}'),
  http('channels', 'content-type', 'publish as application/x-www-form-urlencoded', {
    method: 'POST',
    path: '/channels/hx-news/messages',
    body: 'message=1',
    contentType: 'application/x-www-form-urlencoded',
    expect: BAD_REQUEST,
  }),
  http('channels', 'content-type', 'publish without a content type', {
    method: 'POST',
    path: '/channels/hx-news/messages',
    body: 'message',
    contentType: null,
    expect: BAD_REQUEST,
  }),
  http('channels', 'name', 'publish to a 256-byte channel', {
    method: 'POST',
    path: `/channels/${NAME_256}/messages`,
    body: { message: 1 },
    expect: BAD_REQUEST,
  }),
  http('channels', 'name', 'publish to a channel with a control character', {
    method: 'POST',
    path: '/channels/hx%0Bnews/messages',
    body: { message: 1 },
    expect: BAD_REQUEST,
  }),
  http('channels', 'glob', 'publish to * with a team-a-* token', {
    method: 'POST',
    path: '/channels/*/messages',
    body: { message: 1 },
    as: 'teamA',
    expect: FORBIDDEN,
  }),
  http('channels', 'glob', 'history of team-b through encoded dots, with a team-a-* token', {
    method: 'GET',
    path: '/channels/team-b-news%2F..%2F..%2Fteam-a-news/messages',
    as: 'teamA',
    expect: FORBIDDEN,
  }),
  history('query', 'limit 0', 'limit=0'),
  history('query', 'limit 1001', 'limit=1001'),
  history('query', 'limit -1', 'limit=-1'),
  history('query', 'limit 1e3', 'limit=1e3'),
  history('query', 'limit abc', 'limit=abc'),
  history('query', 'limit with a NUL byte', 'limit=%00'),
  history('query', 'limit given twice', 'limit=1&limit=2'),
  history('query', 'after empty', 'after='),
  history('query', 'after not an id', 'after=abc'),
  history('query', 'after of 17 digits', 'after=12345678901234567'),
  history('query', 'after negative', 'after=-1'),
  history('query', 'after with SQL', `after=${enc("1' OR '1'='1")}`),
  history('query', 'an unknown parameter', 'page=2'),
];

// ---------------------------------------------------------------------------------------
// tokens

const issue = (
  attack: Attack,
  name: string,
  body: Body,
  expect: HttpExpect = BAD_REQUEST,
  as: As = 'admin',
) => http('tokens', attack, `issue ${name}`, { method: 'POST', path: '/tokens', body, expect, as });

const tokenCases: HttpCase[] = [
  issue('field', 'without identity', { scopes: ['kv:read'] }),
  issue('field', 'without scopes', { identity: 'hx' }),
  issue('field', 'with no scopes', { identity: 'hx', scopes: [] }),
  issue('field', 'with an unknown scope', { identity: 'hx', scopes: ['kv:reed'] }),
  issue('field', 'with scopes a string', { identity: 'hx', scopes: 'admin' }),
  issue('field', 'with a glob as a scope', { identity: 'hx', scopes: ['*'] }),
  issue('field', 'with more scopes than exist', {
    identity: 'hx',
    scopes: ['admin', 'admin', 'admin', 'admin', 'admin', 'admin', 'admin', 'admin', 'admin', 'admin'],
  }),
  issue('name', 'with an empty identity', { identity: '', scopes: ['kv:read'] }),
  issue('name', 'with a 256-byte identity', { identity: NAME_256, scopes: ['kv:read'] }),
  issue('name', 'with a control character in identity', { identity: 'hx\u001b[31m', scopes: ['kv:read'] }),
  issue('field', 'with resources empty', { identity: 'hx', scopes: ['kv:read'], resources: [] }),
  issue('field', 'with resources a string', { identity: 'hx', scopes: ['kv:read'], resources: '*' }),
  issue('field', 'with a numeric resource', { identity: 'hx', scopes: ['kv:read'], resources: [1] }),
  issue('name', 'with an empty resource', { identity: 'hx', scopes: ['kv:read'], resources: [''] }),
  issue('name', 'with a 256-byte resource', {
    identity: 'hx',
    scopes: ['kv:read'],
    resources: [`${NAME_255}*`],
  }),
  issue('name', 'with a control character in a resource', {
    identity: 'hx',
    scopes: ['kv:read'],
    resources: ['a\u0000*'],
  }),
  issue(
    'name',
    'with a lone surrogate in a resource',
    '{"identity": "hx", "scopes": ["kv:read"], "resources": ["\\ud800*"]}',
  ),
  issue('glob', `with ${MAX_GLOBS_PER_TOKEN + 1} resources`, {
    identity: 'hx',
    scopes: ['kv:read'],
    resources: Array.from({ length: MAX_GLOBS_PER_TOKEN + 1 }, (_, i) => `r-${i}-*`),
  }),
  issue('glob', `with a pattern of ${MAX_GLOB_STARS + 1} stars`, {
    identity: 'hx',
    scopes: ['kv:read'],
    resources: ['*'.repeat(MAX_GLOB_STARS + 1)],
  }),
  issue('glob', 'with the backtracking pattern team-a-(a*)×12!', {
    identity: 'hx',
    scopes: ['kv:read'],
    resources: [`team-a-${'a*'.repeat(12)}!`],
  }),
  issue(
    'glob',
    'with the backtracking pattern, by a team-a-* admin',
    { identity: 'hx', scopes: ['kv:read'], resources: [`team-a-${'a*'.repeat(12)}!`] },
    BAD_REQUEST,
    'teamAAdmin',
  ),
  issue(
    'glob',
    'for * by a team-a-* admin',
    { identity: 'hx', scopes: ['kv:read'], resources: ['*'] },
    FORBIDDEN,
    'teamAAdmin',
  ),
  issue(
    'glob',
    'for the default resources by a team-a-* admin',
    { identity: 'hx', scopes: ['kv:read'] },
    FORBIDDEN,
    'teamAAdmin',
  ),
  issue(
    'glob',
    'for team-* by a team-a-* admin',
    { identity: 'hx', scopes: ['kv:read'], resources: ['team-*'] },
    FORBIDDEN,
    'teamAAdmin',
  ),
  issue(
    'glob',
    'for team-a* (no dash) by a team-a-* admin',
    { identity: 'hx', scopes: ['kv:read'], resources: ['team-a*'] },
    FORBIDDEN,
    'teamAAdmin',
  ),
  issue(
    'glob',
    'for *team-a-* by a team-a-* admin',
    { identity: 'hx', scopes: ['kv:read'], resources: ['*team-a-*'] },
    FORBIDDEN,
    'teamAAdmin',
  ),
  issue(
    'glob',
    'for team-a-* and team-b-* by a team-a-* admin',
    { identity: 'hx', scopes: ['kv:read'], resources: ['team-a-*', 'team-b-*'] },
    FORBIDDEN,
    'teamAAdmin',
  ),
  issue(
    'scope',
    'by a token without admin',
    { identity: 'hx', scopes: ['kv:read'], resources: ['team-a-*'] },
    FORBIDDEN,
    'teamA',
  ),
  issue('number', 'with ttl 1e400', '{"identity": "hx", "scopes": ["kv:read"], "ttl": 1e400}'),
  issue('number', 'with ttl -0', '{"identity": "hx", "scopes": ["kv:read"], "ttl": -0}'),
  issue('number', 'with ttl over ten years', { identity: 'hx', scopes: ['kv:read'], ttl: 1e12 }),
  issue('field', 'choosing its own secret', { identity: 'hx', scopes: ['kv:read'], token: 'kbs_mine' }),
  issue('field', 'choosing its own id', { identity: 'hx', scopes: ['kv:read'], id: 'bootstrap' }),
  issue(
    'prototype',
    'with __proto__ carrying scopes',
    '{"identity": "hx", "__proto__": {"scopes": ["admin"]}}',
  ),
  issue(
    'prototype',
    'with __proto__ beside valid fields',
    '{"identity": "hx", "scopes": ["kv:read"], "__proto__": {"admin": true}}',
  ),
  issue('json', 'truncated', '{"identity": "hx", "scopes": ["adm'),
  issue(
    'size',
    'with a 1.2 MB body',
    `{"identity": "hx", "scopes": ["kv:read"], "resources": ["${'x'.repeat(1_200_000)}"]}`,
    TOO_LARGE,
  ),
  http('tokens', 'query', 'list with limit 0', {
    method: 'GET',
    path: '/tokens?limit=0',
    expect: BAD_REQUEST,
  }),
  http('tokens', 'query', 'list with limit 1001', {
    method: 'GET',
    path: '/tokens?limit=1001',
    expect: BAD_REQUEST,
  }),
  http('tokens', 'query', 'list with a forged cursor', {
    method: 'GET',
    path: '/tokens?cursor=%22%3E%3Cscript%3E',
    expect: BAD_REQUEST,
  }),
  http('tokens', 'scope', 'list by a token without admin', {
    method: 'GET',
    path: '/tokens',
    as: 'teamA',
    expect: FORBIDDEN,
  }),
  http('tokens', 'glob', 'revoke a token with resources * by a team-a-* admin', {
    method: 'DELETE',
    path: (f) => `/tokens/${f.tokenId.kvReader}`,
    as: 'teamAAdmin',
    expect: FORBIDDEN,
  }),
  http('tokens', 'state', 'revoke an unknown token', {
    method: 'DELETE',
    path: '/tokens/hx-no-such-token',
    expect: NOT_FOUND,
  }),
  http('tokens', 'state', 'revoke a revoked token', {
    method: 'DELETE',
    path: (f) => `/tokens/${f.tokenId.revoked}`,
    expect: NOT_FOUND,
  }),
  http('tokens', 'state', 'revoke the bootstrap token by its id', {
    method: 'DELETE',
    path: '/tokens/bootstrap',
    expect: NOT_FOUND,
  }),
  http('tokens', 'name', 'revoke a token id with a NUL byte', {
    method: 'DELETE',
    path: '/tokens/%00',
    expect: BAD_REQUEST,
  }),
  http('tokens', 'name', 'revoke a 256-byte token id', {
    method: 'DELETE',
    path: `/tokens/${NAME_256}`,
    expect: BAD_REQUEST,
  }),
  http('tokens', 'field', 'revoke with a body', {
    method: 'DELETE',
    path: (f) => `/tokens/${f.tokenId.kvReader}`,
    body: { force: true },
    expect: BAD_REQUEST,
  }),
];

// ---------------------------------------------------------------------------------------
// WebSocket

const frame = (
  name: string,
  body: Of<string | Buffer>,
  code: ApiErrorCode = 'bad_request',
  as: As = 'admin',
  needs?: string,
): WsCase => ({
  kind: 'ws',
  group: 'websocket',
  attack: 'frame',
  name,
  as,
  frame: body,
  expect: { code },
  ...(needs ? { needs } : {}),
});
/** `c`, whose error frame repeats `echo` of its queue frame. */
const echoing = (c: WsCase, echo: { queue?: string; id?: string }): WsCase => ({
  ...c,
  expect: { ...c.expect, echo } as WsCase['expect'],
});
const refused = (name: string, as: As, connect?: WsCase['connect'], needs?: string): WsCase => ({
  kind: 'ws',
  group: 'websocket',
  attack: 'auth',
  name,
  as,
  ...(connect ? { connect } : {}),
  // A Deny policy from the $connect authorizer: 403 (serverless-offline answers a missing token so too).
  expect: { refused: 403 },
  ...(needs ? { needs } : {}),
});

const wsCases: WsCase[] = [
  refused('connect without a token', 'none'),
  refused('connect with ?token= empty', 'none', { query: '?token=' }),
  refused('connect with an unknown token', 'garbage'),
  refused('connect with an expired token', 'expired'),
  refused('connect with a revoked token', 'revoked'),
  refused('connect with the token id instead of the token', 'none', {
    query: (f) => `?token=${f.tokenId.teamA}`,
  }),
  refused('connect with the token under ?Token= (names are case-sensitive)', 'none', {
    query: (f) => `?Token=${enc(f.token.teamA)}`,
  }),
  refused('connect with a 5,000-character token', 'none', { query: `?token=kbs_${'x'.repeat(5000)}` }),
  refused('connect with a token only in Sec-WebSocket-Protocol that is unknown', 'none', {
    protocol: 'kbs_garbage',
  }),
  refused('connect with a token holding neither events:* nor queues:receive', 'noWs', undefined),
  frame('an empty frame', ''),
  frame('whitespace only', '  \n '),
  frame('not JSON', 'subscribe hx-news'),
  frame('truncated JSON', '{"action": "subscribe", "channel": "hx-'),
  frame('a JSON array', '[{"action": "subscribe", "channel": "hx-news"}]'),
  frame('the JSON null', 'null'),
  frame('a JSON number', '42'),
  frame('a JSON string', '"subscribe"'),
  frame('no action', '{"channel": "hx-news"}'),
  frame('an unknown action', '{"action": "admin", "channel": "hx-news"}'),
  frame('an action in capitals', '{"action": "SUBSCRIBE", "channel": "hx-news"}'),
  frame('a numeric action', '{"action": 1, "channel": "hx-news"}'),
  frame('subscribe without a channel', '{"action": "subscribe"}'),
  frame('subscribe to an empty channel', '{"action": "subscribe", "channel": ""}'),
  frame('subscribe to a numeric channel', '{"action": "subscribe", "channel": 7}'),
  frame('subscribe to a 256-byte channel', JSON.stringify({ action: 'subscribe', channel: NAME_256 })),
  frame(
    'subscribe to a 258-byte channel of 86 characters',
    JSON.stringify({ action: 'subscribe', channel: EURO_258 }),
  ),
  frame('subscribe to a channel with a NUL byte', '{"action": "subscribe", "channel": "hx\\u0000news"}'),
  frame('subscribe to a channel with a lone surrogate', '{"action": "subscribe", "channel": "hx\\ud800"}'),
  frame('subscribe with an unknown field', '{"action": "subscribe", "channel": "hx-news", "from": 0}'),
  frame(
    'subscribe with __proto__',
    '{"action": "subscribe", "channel": "hx-news", "__proto__": {"admin": true}}',
  ),
  frame('subscribe with constructor', '{"action": "subscribe", "channel": "hx-news", "constructor": {}}'),
  frame('publish without a message', '{"action": "publish", "channel": "hx-news"}'),
  frame('publish a message of 1e400', '{"action": "publish", "channel": "hx-news", "message": 1e400}'),
  frame(
    'publish a message holding -1e400',
    '{"action": "publish", "channel": "hx-news", "message": {"n": [-1e400]}}',
  ),
  frame(
    'publish a message nested 1,000 deep',
    `{"action": "publish", "channel": "hx-news", "message": ${nested(1000)}}`,
  ),
  frame(
    'publish a message with a lone surrogate',
    '{"action": "publish", "channel": "hx-news", "message": "\\udc00"}',
  ),
  frame(
    'a frame over 32 KB',
    JSON.stringify({ action: 'publish', channel: 'hx-news', message: 'x'.repeat(33 * 1024) }),
    'payload_too_large',
  ),
  frame(
    'a message over 128 KB',
    JSON.stringify({ action: 'publish', channel: 'hx-news', message: 'x'.repeat(129 * 1024) }),
    'payload_too_large',
  ),
  frame('a binary frame', Buffer.from([0x7b, 0x7d, 0x00, 0xff])),
  frame('unsubscribe from a 256-byte channel', JSON.stringify({ action: 'unsubscribe', channel: NAME_256 })),
  frame('a ping with an extra field', '{"action": "ping", "channel": "hx-news"}'),
  frame('a queue receive without a queue', '{"action": "receive"}'),
  echoing(frame('a queue ack without a receipt', '{"action": "ack", "queue": "hx-jobs", "id": "1"}'), {
    queue: 'hx-jobs',
    id: '1',
  }),
  echoing(frame('a queue receive with max 0', '{"action": "receive", "queue": "hx-jobs", "max": 0}'), {
    queue: 'hx-jobs',
  }),
  echoing(frame('a queue receive with max 101', '{"action": "receive", "queue": "hx-jobs", "max": 101}'), {
    queue: 'hx-jobs',
  }),
  echoing(
    frame('a queue receive with max "1" as text', '{"action": "receive", "queue": "hx-jobs", "max": "1"}'),
    { queue: 'hx-jobs' },
  ),
  echoing(
    frame(
      'a queue receive with visibilityTimeout over 12 hours',
      '{"action": "receive", "queue": "hx-jobs", "visibilityTimeout": 43201}',
    ),
    { queue: 'hx-jobs' },
  ),
  echoing(
    frame('a queue receive with a wait field', '{"action": "receive", "queue": "hx-jobs", "wait": 20}'),
    { queue: 'hx-jobs' },
  ),
  echoing(
    frame(
      'a queue extend without visibilityTimeout',
      '{"action": "extend", "queue": "hx-jobs", "id": "1", "receipt": "r"}',
    ),
    { queue: 'hx-jobs', id: '1' },
  ),
  echoing(
    frame(
      'a queue nack with a negative delay',
      '{"action": "nack", "queue": "hx-jobs", "id": "1", "receipt": "r", "delay": -1}',
    ),
    { queue: 'hx-jobs', id: '1' },
  ),
  echoing(
    frame(
      'a queue ack of an unknown message',
      '{"action": "ack", "queue": "hx-jobs", "id": "nope", "receipt": "r"}',
      'not_found',
    ),
    { queue: 'hx-jobs', id: 'nope' },
  ),
  frame(
    'subscribe to team-b with a team-a-* token',
    '{"action": "subscribe", "channel": "team-b-news"}',
    'forbidden',
    'subscriber',
  ),
  frame(
    'subscribe to * with a team-a-* token',
    '{"action": "subscribe", "channel": "*"}',
    'forbidden',
    'subscriber',
  ),
  frame(
    'subscribe to TEAM-A-news with a team-a-* token',
    '{"action": "subscribe", "channel": "TEAM-A-news"}',
    'forbidden',
    'subscriber',
  ),
  frame(
    'subscribe to team-a with a Unicode hyphen',
    '{"action": "subscribe", "channel": "team-a\\u2010news"}',
    'forbidden',
    'subscriber',
  ),
  frame(
    'publish without events:publish',
    '{"action": "publish", "channel": "team-a-news", "message": 1}',
    'forbidden',
    'subscriber',
  ),
  frame(
    'publish to team-b with a team-a-* publisher',
    '{"action": "publish", "channel": "team-b-news", "message": 1}',
    'forbidden',
    'publisher',
  ),
  frame(
    'subscribe without events:subscribe',
    '{"action": "subscribe", "channel": "team-a-news"}',
    'forbidden',
    'publisher',
  ),
  frame(
    `subscribe with a ${MAX_GLOB_STARS}-star pattern to a 255-byte channel that almost matches`,
    JSON.stringify({ action: 'subscribe', channel: `team-a-${'a'.repeat(255 - 'team-a-'.length)}` }),
    'forbidden',
    'starry',
  ),
  echoing(
    frame(
      'receive from team-b with a team-a-* token',
      '{"action": "receive", "queue": "team-b-jobs"}',
      'forbidden',
      'teamA',
    ),
    { queue: 'team-b-jobs' },
  ),
  echoing(
    frame(
      'ack a team-b delivery with a team-a-* token',
      '{"action": "ack", "queue": "team-b-jobs", "id": "1", "receipt": "r"}',
      'forbidden',
      'teamA',
    ),
    { queue: 'team-b-jobs', id: '1' },
  ),
  echoing(
    frame(
      'stop receiving from team-b with a team-a-* token',
      '{"action": "stop", "queue": "team-b-jobs"}',
      'forbidden',
      'teamA',
    ),
    { queue: 'team-b-jobs' },
  ),
  {
    kind: 'ws',
    group: 'websocket',
    attack: 'auth',
    name: 'the token is revoked while its connection is open: the server closes it',
    as: 'teamA',
    meanwhile: 'revoke',
    expect: { closedByServer: true },
  },
  ...(
    [
      ['subscribe', '{"action": "subscribe", "channel": "team-a-news"}'],
      ['publish', '{"action": "publish", "channel": "team-a-news", "message": 1}'],
      ['unsubscribe', '{"action": "unsubscribe", "channel": "team-a-news"}'],
    ] as const
  ).map(
    ([action, body]): WsCase => ({
      kind: 'ws',
      group: 'websocket',
      attack: 'auth',
      name: `${action} after the token expired: refused, and the connection closes`,
      as: 'teamA',
      meanwhile: 'expire',
      frame: body,
      expect: { code: 'unauthorized', closes: true },
    }),
  ),
];

export const CASES: Case[] = [
  ...routingCases,
  ...headerCases,
  ...authCases,
  ...scopeCases,
  ...globCases,
  ...kvCases,
  ...kvGlobCases,
  ...boundaryCases,
  ...sessionCases,
  ...queueCases,
  ...channelCases,
  ...tokenCases,
  ...wsCases,
];
