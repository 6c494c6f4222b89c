/**
 * The auth contract of docs/api.md on every HTTP route, through the real handlers on real Redis and
 * real PostgreSQL: missing, unknown, expired and revoked tokens answer 401; a live token without
 * the route's scope or whose resource globs do not match the route's resource answers 403; the
 * error body is exactly `{"error": {"code", "message"}}`. The scope each route needs is written
 * out here from docs/api.md, independently of the routes table, so a table that drifts fails.
 *
 * An unreachable server fails the run under CI and is skipped loudly elsewhere (the pattern of
 * test/conformance/conformance.test.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type RouteSpec, routeFor, routeKey, routes } from '../../functions/runtime/routes.js';
import { resolveConfig, type StorageConfigInput } from '../../lib/config/index.js';
import { SCOPES, type Scope, type Storage } from '../../lib/storage/types.js';
import { type Backend, installHint, postgresBackend, redisBackend } from '../support/backends.js';
import { type ApiResponse, type CallOptions, call, serveFrom } from './api-support.js';

/** docs/api.md's scope per route (`admin` implies every scope and is the only one for tokens routes). */
const EXPECTED_SCOPES: Record<string, readonly Scope[]> = {
  'PUT /kv/{key}': ['kv:write'],
  'GET /kv/{key}': ['kv:read'],
  'DELETE /kv/{key}': ['kv:write'],
  'POST /kv/{key}/expire': ['kv:write'],
  'POST /kv/{key}/incr': ['kv:write'],
  'POST /sessions': ['sessions:write'],
  'GET /sessions': ['sessions:read'],
  'GET /sessions/{id}': ['sessions:read'],
  'POST /sessions/{id}/keepalive': ['sessions:write'],
  'DELETE /sessions/{id}': ['sessions:write'],
  'GET /clusters/active': ['sessions:read'],
  'GET /clusters/{clusterId}/active': ['sessions:read'],
  'POST /queues/{queue}/messages': ['queues:send'],
  'POST /queues/{queue}/receive': ['queues:receive'],
  'POST /queues/{queue}/messages/{id}/ack': ['queues:receive'],
  'POST /queues/{queue}/messages/{id}/nack': ['queues:receive'],
  'GET /queues/{queue}': ['queues:send', 'queues:receive'],
  'POST /channels/{channel}/messages': ['events:publish'],
  'GET /channels/{channel}/messages': ['events:subscribe'],
  'POST /tokens': [],
  'GET /tokens': [],
  'DELETE /tokens/{id}': [],
};

/** Routes whose resource (key, queue, channel, cluster id) a token's globs are matched against. */
const RESOURCE_ROUTES = Object.keys(EXPECTED_SCOPES).filter(
  (key) => !['GET /clusters/active', 'POST /tokens', 'GET /tokens', 'DELETE /tokens/{id}'].includes(key),
);

const TOKEN_ROUTES = (routes as readonly RouteSpec[]).filter((route) => route.path !== '/health');
const NON_ADMIN_SCOPES = SCOPES.filter((scope) => scope !== 'admin');

// A stack frame, a Node error class name, or text a driver would put in a message.
const LEAK =
  /\n\s*at |\bat \S+:\d+:\d+|\.ts:\d+|node_modules|Error:|ECONN|ioredis|ReplyError|SQLSTATE|kst[_:]/;

function expectError(response: ApiResponse, status: 401 | 403, code: 'unauthorized' | 'forbidden'): void {
  expect(response.status, response.raw).toBe(status);
  expect(String(response.headers['content-type'])).toMatch(/^application\/json\b/);
  expect(response.json).toStrictEqual({ error: { code, message: expect.any(String) } });
  expect(response.json.error.message).not.toBe('');
  expect(response.raw).not.toMatch(LEAK);
}

/** Allowed: anything but an auth refusal, and never a server error for a well-formed request. */
function expectAllowed(response: ApiResponse, what: string): void {
  expect([401, 403], `${what}: ${response.status} ${response.raw}`).not.toContain(response.status);
  expect(response.status, `${what}: ${response.raw}`).toBeLessThan(500);
}

function describeAuth(backend: Backend): void {
  const bootstrapToken = `kbs_bootstrap_${randomBytes(16).toString('hex')}`;
  const configInput: StorageConfigInput = {
    auth: { bootstrapTokenHash: createHash('sha256').update(bootstrapToken).digest('hex') },
  };
  let storage: Storage;
  let seq = 0;
  const unique = (prefix: string) => `${prefix}-${++seq}`;

  beforeAll(() => {
    storage = backend.create(configInput);
  });
  // The handlers' storage is module state shared by every describe of this file: set it per test.
  beforeEach(() => serveFrom(storage, resolveConfig(configInput)));
  afterAll(async () => {
    try {
      await storage?.close();
    } finally {
      await backend.cleanup();
    }
  });

  async function issue(scopes: Scope[], resources: string[] = ['*'], ttl?: number) {
    return storage.tokens.issue({ identity: 'auth-test', scopes, resources, ttl });
  }

  /**
   * A well-formed request to `key` naming `resource` (creating the session it needs), so an
   * allowed call gets past validation to the handler.
   */
  async function sample(key: string, resource = unique('res')): Promise<CallOptions> {
    const sessionOf = async () => (await storage.sessions.create({ clusterId: resource })).sessionId;
    switch (key) {
      case 'PUT /kv/{key}':
        return { params: { key: resource }, body: { value: 1 } };
      case 'GET /kv/{key}':
      case 'DELETE /kv/{key}':
        return { params: { key: resource } };
      case 'POST /kv/{key}/expire':
        return { params: { key: resource }, body: { ttl: 60 } };
      case 'POST /kv/{key}/incr':
        return { params: { key: resource }, body: {} };
      case 'POST /sessions':
        return { body: { clusterId: resource } };
      case 'GET /sessions':
        return { query: { clusterId: resource } };
      case 'GET /sessions/{id}':
      case 'DELETE /sessions/{id}':
        return { params: { id: await sessionOf() } };
      case 'POST /sessions/{id}/keepalive':
        return { params: { id: await sessionOf() }, body: {} };
      case 'GET /clusters/active':
      case 'GET /tokens':
        return {};
      case 'GET /clusters/{clusterId}/active':
        return { params: { clusterId: resource } };
      case 'POST /queues/{queue}/messages':
        return { params: { queue: resource }, body: { payload: { n: 1 } } };
      case 'POST /queues/{queue}/receive':
        return { params: { queue: resource }, body: {} };
      case 'POST /queues/{queue}/messages/{id}/ack':
      case 'POST /queues/{queue}/messages/{id}/nack':
        return { params: { queue: resource, id: 'no-such-message' }, body: { receipt: 'no-such-receipt' } };
      case 'GET /queues/{queue}':
        return { params: { queue: resource } };
      case 'POST /channels/{channel}/messages':
        return { params: { channel: resource }, body: { message: { n: 1 } } };
      case 'GET /channels/{channel}/messages':
        return { params: { channel: resource } };
      case 'POST /tokens':
        return { body: { identity: 'issued-by-test', scopes: ['kv:read'] } };
      case 'DELETE /tokens/{id}':
        return { params: { id: 'no-such-token' } };
      default:
        throw new Error(`no sample request for ${key}`);
    }
  }

  const withToken = async (key: string, token: string, resource?: string) =>
    call(key, { ...(await sample(key, resource)), token });

  it('the expected-scope table covers exactly the routes that need a token', () => {
    expect(TOKEN_ROUTES.map(routeKey).sort()).toEqual(Object.keys(EXPECTED_SCOPES).sort());
    expect(
      (routes as readonly RouteSpec[]).find((route) => route.path === '/health')?.scopes,
    ).toBeUndefined();
  });

  it('GET /health answers 200 without a token (and ignores a bad one)', async () => {
    const bare = await call('GET /health');
    expect(bare.status).toBe(200);
    expect(bare.json.status).toBe('ok');
    const withJunk = await call('GET /health', { token: 'not-a-token' });
    expect(withJunk.status).toBe(200);
  });

  describe.each(TOKEN_ROUTES.map(routeKey))('%s', (key) => {
    const expected = EXPECTED_SCOPES[key] ?? [];

    it('no token → 401', async () => {
      expectError(await call(key, await sample(key)), 401, 'unauthorized');
    });

    it('unknown token → 401', async () => {
      const unknown = `kbs_${randomBytes(32).toString('base64url')}`;
      expectError(await withToken(key, unknown), 401, 'unauthorized');
      expectError(
        await call(key, { ...(await sample(key)), headers: { 'x-api-key': unknown } }),
        401,
        'unauthorized',
      );
    });

    it('expired token → 401', async () => {
      const issued = await issue(['admin'], ['*'], 0.05);
      const expiresAt = Date.parse(issued.expiresAt!);
      await vi.waitFor(() => expect(Date.now(), 'the token to expire').toBeGreaterThan(expiresAt), {
        timeout: 10_000,
      });
      expectError(await withToken(key, issued.token), 401, 'unauthorized');
    });

    it('revoked token → 401 on the very next request', async () => {
      const issued = await issue(['admin']);
      expectAllowed(await withToken(key, issued.token), 'before revoking');
      expect((await storage.tokens.revoke(issued.id))[0]).toBe(issued.id);
      expectError(await withToken(key, issued.token), 401, 'unauthorized');
    });

    it('every scope: allowed iff docs/api.md gives the route that scope (admin always), else 403', async () => {
      for (const scope of SCOPES) {
        const { token } = await issue([scope]);
        const response = await withToken(key, token);
        if (scope === 'admin' || expected.includes(scope)) expectAllowed(response, `scope ${scope}`);
        else expectError(response, 403, 'forbidden');
      }
    });

    it('a token with every scope but the right ones → 403', async () => {
      const { token } = await issue(NON_ADMIN_SCOPES.filter((scope) => !expected.includes(scope)));
      expectError(await withToken(key, token), 403, 'forbidden');
    });

    if (routeFor(key)?.body) {
      it('auth comes before input checks: malformed JSON answers 401 without a token, 403 without the scope', async () => {
        const { params } = await sample(key);
        const malformed = { params, body: '{"truncated": ' };
        expectError(await call(key, malformed), 401, 'unauthorized');
        const { token } = await issue(NON_ADMIN_SCOPES.filter((scope) => !expected.includes(scope)));
        expectError(await call(key, { ...malformed, token }), 403, 'forbidden');
      });
    }

    it('the bootstrap admin token from config is allowed', async () => {
      expectAllowed(await withToken(key, bootstrapToken), 'bootstrap token');
    });

    if (RESOURCE_ROUTES.includes(key)) {
      it('right scope, resource glob not matching → 403; matching → allowed', async () => {
        for (const scope of expected) {
          const { token } = await issue([scope], ['allowed-*']);
          expectError(await withToken(key, token, unique('other')), 403, 'forbidden');
          expectAllowed(await withToken(key, token, unique('allowed')), `${scope} on allowed-…`);
        }
      });
    }
  });

  describe('token headers', () => {
    // GET /kv/{key} of a missing key: 404 once authenticated.
    const probe = (headers: Record<string, string>) =>
      call('GET /kv/{key}', { params: { key: unique('header-probe') }, headers });

    const accepted: [string, (token: string) => Record<string, string>][] = [
      ['Authorization: Bearer', (t) => ({ authorization: `Bearer ${t}` })],
      ['X-Api-Key', (t) => ({ 'x-api-key': t })],
      ['X-Api-Key (canonical case)', (t) => ({ 'X-Api-Key': t })],
      ['x-API-key', (t) => ({ 'x-API-key': t })],
      ['AUTHORIZATION: Bearer', (t) => ({ AUTHORIZATION: `Bearer ${t}` })],
      ['Authorization: bearer (lower-case scheme)', (t) => ({ Authorization: `bearer ${t}` })],
      ['Authorization: BEARER', (t) => ({ authorization: `BEARER ${t}` })],
      ['Authorization: BeArEr', (t) => ({ authorization: `BeArEr ${t}` })],
      [
        'Authorization: Basic … with a valid X-Api-Key uses the key',
        (t) => ({ authorization: 'Basic dXNlcjpwYXNzd29yZA==', 'x-api-key': t }),
      ],
    ];
    for (const [name, headers] of accepted) {
      it(`${name} is accepted`, async () => {
        const { token } = await issue(['kv:read']);
        const response = await probe(headers(token));
        expect(response.status, response.raw).toBe(404);
        expect(response.json.error.code).toBe('not_found');
      });
    }

    const refused: [string, (token: string) => Record<string, string>][] = [
      ['Authorization: Basic … alone', () => ({ authorization: 'Basic dXNlcjpwYXNzd29yZA==' })],
      ['Authorization: Bearer with no token', () => ({ authorization: 'Bearer ' })],
      ['Authorization: Token <token> (another scheme)', (t) => ({ authorization: `Token ${t}` })],
      ['Authorization: <token> without a scheme', (t) => ({ authorization: t })],
      ['an empty X-Api-Key', () => ({ 'x-api-key': '' })],
      ['the token in another header', (t) => ({ 'x-token': t })],
      ['a 5,000-character bearer token', () => ({ authorization: `Bearer ${'t'.repeat(5000)}` })],
      ['a bearer token with non-ASCII characters', () => ({ authorization: 'Bearer tökén-名前' })],
      [
        'the token with a character changed',
        (t) => ({ authorization: `Bearer ${t.slice(0, -1)}${t.endsWith('A') ? 'B' : 'A'}` }),
      ],
    ];
    for (const [name, headers] of refused) {
      it(`${name} → 401`, async () => {
        const { token } = await issue(['kv:read']);
        expectError(await probe(headers(token)), 401, 'unauthorized');
      });
    }
  });

  describe('resource globs', () => {
    const globs: { pattern: string; match: string[]; miss: string[] }[] = [
      { pattern: '*', match: ['anything', 'ünïcödé-名前', 'x'], miss: [] },
      {
        pattern: 'team-a-*',
        match: ['team-a-1', 'team-a-', 'team-a-x-y'],
        miss: ['team-b-1', 'team-a', 'xteam-a-1', 'TEAM-A-1'],
      },
      { pattern: 'exact-name', match: ['exact-name'], miss: ['exact-name2', 'exact-nam', 'xexact-name'] },
      {
        pattern: 'pre-*-suf',
        match: ['pre-x-suf', 'pre--suf', 'pre-a-b-suf'],
        miss: ['pre-x-sufx', 'xpre-x-suf', 'pre-suf'],
      },
      // Regex metacharacters in a pattern are literal: `.` is a dot, not any character.
      { pattern: 'v1.team*', match: ['v1.team', 'v1.team-9'], miss: ['v1xteam', 'v12team'] },
    ];
    for (const { pattern, match, miss } of globs) {
      it(`${JSON.stringify(pattern)} allows ${match.join(', ')}${miss.length ? `; refuses ${miss.join(', ')}` : ''} on every resource route`, async () => {
        const { token } = await issue(NON_ADMIN_SCOPES, [pattern]);
        for (const key of RESOURCE_ROUTES) {
          for (const name of match) expectAllowed(await withToken(key, token, name), `${key} on ${name}`);
          for (const name of miss) {
            const response = await withToken(key, token, name);
            expect(response.status, `${key} on ${name}: ${response.raw}`).toBe(403);
            expectError(response, 403, 'forbidden');
          }
        }
      });
    }

    it('an admin token is still bound by its resources', async () => {
      const { token } = await issue(['admin'], ['team-a-*']);
      expectAllowed(await withToken('GET /kv/{key}', token, 'team-a-1'), 'admin on team-a-1');
      expectError(await withToken('GET /kv/{key}', token, 'team-b-1'), 403, 'forbidden');
    });
  });

  describe('sessions of other clusters', () => {
    let token: string;
    let own: string;
    let foreign: string;
    const correlationId = 'corr-shared-by-c1-and-c2';

    beforeAll(async () => {
      token = (await issue(['sessions:read', 'sessions:write'], ['c-1'])).token;
      own = (await storage.sessions.create({ clusterId: 'c-1', correlationId })).sessionId;
      foreign = (await storage.sessions.create({ clusterId: 'c-2', correlationId })).sessionId;
    });

    it('its own cluster’s session is served', async () => {
      const response = await call('GET /sessions/{id}', { params: { id: own }, token });
      expect(response.status, response.raw).toBe(200);
      expect(response.json.clusterId).toBe('c-1');
    });

    it('GET, keepalive and DELETE of a session of cluster c-2 → 403, and the session lives on', async () => {
      const before = await storage.sessions.get(foreign);
      expectError(await call('GET /sessions/{id}', { params: { id: foreign }, token }), 403, 'forbidden');
      expectError(
        await call('POST /sessions/{id}/keepalive', { params: { id: foreign }, body: { ttl: 9999 }, token }),
        403,
        'forbidden',
      );
      expectError(await call('DELETE /sessions/{id}', { params: { id: foreign }, token }), 403, 'forbidden');
      expect(await storage.sessions.get(foreign)).toEqual(before);
    });

    it('creating a session, listing by cluster or checking activity of c-2 → 403', async () => {
      const active = await storage.sessions.activeClusters();
      expectError(await call('POST /sessions', { body: { clusterId: 'c-3' }, token }), 403, 'forbidden');
      expect(await storage.sessions.activeClusters()).toEqual(active);
      expectError(await call('GET /sessions', { query: { clusterId: 'c-2' }, token }), 403, 'forbidden');
      expectError(
        await call('GET /clusters/{clusterId}/active', { params: { clusterId: 'c-2' }, token }),
        403,
        'forbidden',
      );
    });

    it('GET /sessions?correlationId= lists only sessions of its clusters', async () => {
      const response = await call('GET /sessions', { query: { correlationId }, token });
      expect(response.status, response.raw).toBe(200);
      expect(response.json.sessions.map((s: { sessionId: string }) => s.sessionId)).toEqual([own]);
      // An unrestricted reader sees both: the filter is the token's, not the data's.
      const { token: all } = await issue(['sessions:read']);
      const everyone = await call('GET /sessions', { query: { correlationId }, token: all });
      expect(everyone.json.sessions.map((s: { sessionId: string }) => s.sessionId).sort()).toEqual(
        [own, foreign].sort(),
      );
    });

    it('GET /clusters/active lists only its clusters', async () => {
      const response = await call('GET /clusters/active', { token });
      expect(response.status, response.raw).toBe(200);
      expect(response.json).toEqual({ clusters: ['c-1'] });
      const { token: all } = await issue(['sessions:read']);
      const everyone = await call('GET /clusters/active', { token: all });
      expect(everyone.json.clusters).toEqual(expect.arrayContaining(['c-1', 'c-2']));
    });
  });

  describe('tokens through the API', () => {
    it('the bootstrap token (config hash) is admin: lists and issues tokens', async () => {
      const list = await call('GET /tokens', { token: bootstrapToken });
      expect(list.status, list.raw).toBe(200);
      expect(Array.isArray(list.json.tokens)).toBe(true);
      const issued = await call('POST /tokens', {
        token: bootstrapToken,
        body: { identity: 'svc-from-bootstrap', scopes: ['kv:write'] },
      });
      expect(issued.status, issued.raw).toBe(201);
    });

    it('a token issued with POST /tokens works at once; DELETE /tokens/{id} kills it on the next request', async () => {
      const issued = await call('POST /tokens', {
        token: bootstrapToken,
        body: { identity: 'svc-api', scopes: ['kv:read'], resources: ['api-*'] },
      });
      expect(issued.status, issued.raw).toBe(201);
      const { id, token } = issued.json as { id: string; token: string };

      const read = await call('GET /kv/{key}', { params: { key: 'api-missing' }, token });
      expect(read.status, read.raw).toBe(404);
      expectError(
        await call('PUT /kv/{key}', { params: { key: 'api-k' }, body: { value: 1 }, token }),
        403,
        'forbidden',
      );
      expectError(await call('GET /kv/{key}', { params: { key: 'other' }, token }), 403, 'forbidden');

      const revoked = await call('DELETE /tokens/{id}', { params: { id }, token: bootstrapToken });
      expect(revoked.status, revoked.raw).toBe(204);
      expectError(
        await call('GET /kv/{key}', { params: { key: 'api-missing' }, token }),
        401,
        'unauthorized',
      );
      // Revoking again: the token is gone.
      const again = await call('DELETE /tokens/{id}', { params: { id }, token: bootstrapToken });
      expect(again.status, again.raw).toBe(404);
    });

    it('a token may not act on tokens unless admin, whatever its other scopes', async () => {
      const { token } = await issue(NON_ADMIN_SCOPES);
      expectError(await call('GET /tokens', { token }), 403, 'forbidden');
      expectError(
        await call('POST /tokens', { token, body: { identity: 'escalate', scopes: ['admin'] } }),
        403,
        'forbidden',
      );
    });
  });
}

const BACKENDS: Backend[] = [redisBackend(), postgresBackend({ name: 'postgresql-pg', driver: 'pg' })];

for (const backend of BACKENDS) {
  const unavailable = await backend.available();
  if (unavailable === undefined) {
    describe(`auth [${backend.name}]`, () => describeAuth(backend));
  } else if (process.env.CI) {
    describe(`auth [${backend.name}]`, () => {
      it(`${backend.name} is reachable (required under CI)`, () => {
        throw new Error(`${backend.name} is unavailable under CI: ${unavailable}`);
      });
    });
  } else {
    const reason = `${unavailable} (${installHint(backend)})`;
    console.warn(`\n⚠ auth [${backend.name}] SKIPPED: ${reason}\n`);
    describe.skip(`auth [${backend.name}] — SKIPPED: ${reason}`, () => describeAuth(backend));
  }
}
