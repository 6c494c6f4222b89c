/**
 * docs/security.md over HTTP, through the real handlers on real Redis and PostgreSQL: token
 * lineage (a token issues only within itself and dies with its issuer), paged listings bounded
 * by the caller's globs, least authority for a session's serviceIdentity, 403 messages that name
 * nothing outside the caller's globs, and bootstrap token rotation.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig, type StorageConfigInput } from '../../lib/config/index.js';
import { createFacade } from '../../lib/storage/facade.js';
import { createMemoryDriver } from '../../lib/storage/memory/index.js';
import type { Scope, Storage } from '../../lib/storage/types.js';
import { type Backend, installHint, postgresBackend, redisBackend } from '../support/backends.js';
import { name } from '../support/helpers.js';
import { type ApiResponse, call, serveFrom } from './api-support.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function expectRefused(response: ApiResponse, status: number, message: RegExp): void {
  expect(response.status, response.raw).toBe(status);
  expect(response.json.error.message).toMatch(message);
}

/** Every page of a paged route, with `limit`; answers the pages' items. */
async function walk(route: string, token: string, key: 'tokens' | 'clusters', limit: number) {
  const pages: unknown[][] = [];
  let cursor: string | undefined;
  do {
    const query: Record<string, string> = { limit: String(limit), ...(cursor ? { cursor } : {}) };
    const response = await call(route, { token, query });
    expect(response.status, response.raw).toBe(200);
    expect(Object.keys(response.json).sort()).toEqual(response.json.cursor ? [key, 'cursor'].sort() : [key]);
    pages.push(response.json[key]);
    cursor = response.json.cursor;
  } while (cursor !== undefined && pages.length < 100);
  return pages;
}

function describeSecurity(backend: Backend): void {
  const bootstrapToken = `kbs_bootstrap_${randomBytes(16).toString('hex')}`;
  const configInput: StorageConfigInput = { auth: { bootstrapTokenHash: sha256(bootstrapToken) } };
  let storage: Storage;

  beforeAll(() => {
    storage = backend.create(configInput);
  });
  beforeEach(() => serveFrom(storage, resolveConfig(configInput)));
  afterAll(async () => {
    try {
      await storage?.close();
    } finally {
      await backend.cleanup();
    }
  });
  const issue = (scopes: Scope[], resources: string[] = ['*'], ttl?: number) =>
    storage.tokens.issue({ identity: name('sec'), scopes, resources, ttl });

  describe('token lineage', () => {
    it('a token issued by a token expires with it, and a ttl past it is a 400 naming both times', async () => {
      const admin = await issue(['admin'], ['*'], 600);
      const inherits = await call('POST /tokens', {
        token: admin.token,
        body: { identity: 'child', scopes: ['kv:read'] },
      });
      expect(inherits.status, inherits.raw).toBe(201);
      expect(inherits.json.expiresAt).toBe(admin.expiresAt);
      const late = await call('POST /tokens', {
        token: admin.token,
        body: { identity: 'child', scopes: ['kv:read'], ttl: 3600 },
      });
      expectRefused(late, 400, /^ttl: the token would expire at .*Z, after the issuing token does/);
      expect(late.json.error.message).toContain(admin.expiresAt);
      expect(late.json.error.code).toBe('bad_request');
    });

    it('the bootstrap token issues tokens without an issuer, which it cannot revoke by rotation', async () => {
      const issued = await call('POST /tokens', {
        token: bootstrapToken,
        body: { identity: 'root-child', scopes: ['admin'] },
      });
      expect(issued.status, issued.raw).toBe(201);
      expect((await storage.tokens.get(issued.json.id))?.issuerId).toBeNull();
    });

    it('DELETE /tokens/{id} of an issuer refuses every token below it on the next request', async () => {
      const admin = await issue(['admin']);
      const child = (
        await call('POST /tokens', { token: admin.token, body: { identity: 'c', scopes: ['admin'] } })
      ).json;
      const grandchild = (
        await call('POST /tokens', { token: child.token, body: { identity: 'g', scopes: ['kv:read'] } })
      ).json;
      const key = { params: { key: name('k') } };
      expect((await call('GET /kv/{key}', { token: grandchild.token, ...key })).status).toBe(404);
      const revoked = await call('DELETE /tokens/{id}', { token: bootstrapToken, params: { id: admin.id } });
      expect(revoked.status, revoked.raw).toBe(204);
      for (const t of [admin.token, child.token, grandchild.token]) {
        expect((await call('GET /kv/{key}', { token: t, ...key })).status).toBe(401);
      }
      const audited = await storage.audit.query({ identity: 'bootstrap', limit: 10 });
      const entry = audited.find((e) => e.action === 'tokens.revoke' && e.resource === admin.id);
      expect(entry).toBeDefined();
      expect((entry!.details!.revoked as string[]).sort()).toEqual(
        [admin.id, child.id, grandchild.id].sort(),
      );
    });
  });

  describe('paged listings', () => {
    it('GET /tokens walks the tokens within the caller’s globs, limit at a time', async () => {
      const stem = name('tp');
      const admin = await issue(['admin'], [`${stem}-*`]);
      const within: string[] = [admin.id];
      for (let i = 0; i < 5; i++) within.push((await issue(['kv:read'], [`${stem}-${i}`])).id);
      await issue(['kv:read'], [`${stem}x`]);
      await issue(['kv:read'], ['*']);
      const pages = await walk('GET /tokens', admin.token, 'tokens', 2);
      expect(pages.map((p) => p.length)).toEqual([2, 2, 2]);
      const ids = pages.flat().map((t) => (t as { id: string }).id);
      expect([...ids].sort()).toEqual([...within].sort());
      for (const t of pages.flat()) {
        expect(Object.keys(t as object).sort()).toEqual(
          ['createdAt', 'expiresAt', 'id', 'identity', 'resources', 'scopes'].sort(),
        );
      }
    });

    it('GET /clusters/active walks the clusters within the caller’s globs', async () => {
      const stem = name('cp');
      const { token } = await issue(['sessions:read'], [`${stem}-a-*`, `${stem}-b`]);
      const mine = [`${stem}-a-1`, `${stem}-a-2`, `${stem}-a-3`, `${stem}-b`];
      for (const clusterId of [...mine, `${stem}-c`, `${stem}-a`])
        await storage.sessions.create({ clusterId });
      const pages = await walk('GET /clusters/active', token, 'clusters', 3);
      expect(pages).toEqual([mine.slice(0, 3), mine.slice(3)]);
      // Default limit (100): one page here.
      expect((await call('GET /clusters/active', { token })).json).toEqual({ clusters: mine });
    });

    it('a bad limit or cursor is a 400 naming the parameter', async () => {
      const admin = await issue(['admin']);
      for (const route of ['GET /tokens', 'GET /clusters/active']) {
        for (const limit of ['0', '1001', '9999']) {
          expectRefused(
            await call(route, { token: admin.token, query: { limit } }),
            400,
            new RegExp(`^limit: must be an integer from 1 to 1000, got ${limit}$`),
          );
        }
        expectRefused(await call(route, { token: admin.token, query: { limit: 'ten' } }), 400, /limit/);
        // Cursors that decode to no position: garbage, and a control character (base64url 'AQ').
        for (const cursor of ['not a cursor', 'AQ']) {
          expectRefused(
            await call(route, { token: admin.token, query: { cursor } }),
            400,
            new RegExp(`^cursor: is not a cursor answered by an earlier page of ${route}$`),
          );
        }
      }
    });
  });

  describe('least authority', () => {
    it('a session’s serviceIdentity is the token’s identity; only an admin token may name another', async () => {
      const writer = await issue(['sessions:write']);
      const clusterId = name('c');
      const plain = await call('POST /sessions', { token: writer.token, body: { clusterId } });
      expect(plain.status, plain.raw).toBe(201);
      expect(plain.json.serviceIdentity).toBe(writer.identity);
      const own = await call('POST /sessions', {
        token: writer.token,
        body: { clusterId, serviceIdentity: writer.identity },
      });
      expect(own.status, own.raw).toBe(201);
      const other = await call('POST /sessions', {
        token: writer.token,
        body: { clusterId, serviceIdentity: 'someone-else' },
      });
      expectRefused(other, 403, /^serviceIdentity may only be set by an admin token/);
      expect(await storage.sessions.byCluster(clusterId)).toHaveLength(2);
      const admin = await issue(['admin']);
      const named = await call('POST /sessions', {
        token: admin.token,
        body: { clusterId, serviceIdentity: 'someone-else' },
      });
      expect(named.status, named.raw).toBe(201);
      expect(named.json.serviceIdentity).toBe('someone-else');
    });

    it('a 403 for another team’s session names the session asked for, never its cluster', async () => {
      const secret = name('team-b-secret-cluster');
      const { sessionId } = await storage.sessions.create({ clusterId: secret });
      const reader = await issue(['sessions:read', 'sessions:write'], ['team-a-*']);
      for (const [route, extra] of [
        ['GET /sessions/{id}', {}],
        ['DELETE /sessions/{id}', {}],
        ['POST /sessions/{id}/keepalive', { body: {} }],
      ] as const) {
        const response = await call(route, { token: reader.token, params: { id: sessionId }, ...extra });
        expectRefused(
          response,
          403,
          /^token may not access session ".*": it lies outside the token's resources \(team-a-\*\)$/,
        );
        expect(response.raw, route).not.toContain(secret);
        expect(response.json.error.message).toContain(sessionId);
      }
      expect(await storage.sessions.get(sessionId)).toBeDefined();
    });
  });
}

describe('bootstrap token rotation', () => {
  // One store, two deployments: the same data under the old and then the new configuration.
  const oldToken = `kbs_old_${randomBytes(16).toString('hex')}`;
  const newToken = `kbs_new_${randomBytes(16).toString('hex')}`;
  const configOf = (token: string) => resolveConfig({ auth: { bootstrapTokenHash: sha256(token) } });
  const driver = createMemoryDriver(resolveConfig({}));
  const before = createFacade(driver, configOf(oldToken));
  const after = createFacade(driver, configOf(newToken));

  it('after a redeploy with a new hash the old bootstrap token is refused, the new one works', async () => {
    serveFrom(before, configOf(oldToken));
    expect((await call('GET /tokens', { token: oldToken })).status).toBe(200);
    const issued = await call('POST /tokens', {
      token: oldToken,
      body: { identity: 'svc', scopes: ['kv:read'] },
    });
    expect(issued.status, issued.raw).toBe(201);
    const oldId = (await before.tokens.verify(oldToken))!.id;

    serveFrom(after, configOf(newToken));
    const refused = await call('GET /tokens', { token: oldToken });
    expect(refused.status, refused.raw).toBe(401);
    expect((await call('GET /tokens', { token: newToken })).status).toBe(200);
    // A connection holding the old token's id finds it gone on its next check.
    expect(await after.tokens.get(oldId)).toBeUndefined();
    expect((await after.tokens.get((await after.tokens.verify(newToken))!.id))?.identity).toBe('bootstrap');
    // Tokens the old bootstrap token issued have no issuer: rotation leaves them (revoke them by id).
    const child = issued.json as { id: string; token: string };
    expect((await call('GET /kv/{key}', { token: child.token, params: { key: 'k' } })).status).toBe(404);
    expect((await call('DELETE /tokens/{id}', { token: newToken, params: { id: child.id } })).status).toBe(
      204,
    );
  });
});

for (const backend of [redisBackend(), postgresBackend({ name: 'postgresql-pg', driver: 'pg' })]) {
  const unavailable = await backend.available();
  const title = `security [${backend.name}]`;
  if (unavailable === undefined) describe(title, () => describeSecurity(backend));
  else if (process.env.CI) {
    describe(title, () => {
      it(`${backend.name} is reachable (required under CI)`, () => {
        throw new Error(`${backend.name} is unavailable under CI: ${unavailable}`);
      });
    });
  } else {
    describe.skip(`${title} — SKIPPED: ${unavailable} (${installHint(backend)})`, () =>
      describeSecurity(backend));
  }
}
