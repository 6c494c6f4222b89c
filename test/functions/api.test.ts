/**
 * The HTTP contract of docs/api.md, route by route, through the real functions invoked with API
 * Gateway v2 events, on real Redis and real PostgreSQL.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { createStorage } from '../../lib/storage/index.js';
import { isoMs, name } from '../support/helpers.js';
import { call, describeOnRealBackends, serveFrom } from './api-support.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

await describeOnRealBackends('HTTP API', ({ backend, storage }) => {
  let token = '';
  beforeAll(async () => {
    ({ token } = await storage().tokens.issue({ identity: 'api-test', scopes: ['admin'] }));
  });
  const as = (routeKey: string, options: Parameters<typeof call>[1] = {}) =>
    call(routeKey, { token, ...options });

  it('GET /health answers ok with the backend and its check, without a token', async () => {
    const response = await call('GET /health');
    expect(response.status).toBe(200);
    expect(response.json).toEqual({
      status: 'ok',
      backend: backend.kind,
      checks: { [backend.kind]: { ok: true, latencyMs: expect.any(Number) } },
    });
  });

  // kv ------------------------------------------------------------------------------------
  it('PUT /kv/{key} then GET answers the value and a null expiresAt; every JSON type round-trips', async () => {
    for (const value of [{ a: [1, 'two', null, true] }, [1, 2], 'text', 0, -1.5, true, false, null]) {
      const key = name('kv');
      const put = await as('PUT /kv/{key}', { params: { key }, body: { value } });
      expect(put.status).toBe(200);
      expect(put.json).toEqual({ key, expiresAt: null });
      const get = await as('GET /kv/{key}', { params: { key } });
      expect(get.status).toBe(200);
      expect(get.json).toEqual({ key, value, expiresAt: null });
      expect(get.headers['content-type']).toBe('application/json');
    }
  });

  it('PUT with ttl answers the expiry, and the key is gone once it passes', async () => {
    const key = name('kv');
    const before = Date.now();
    const put = await as('PUT /kv/{key}', { params: { key }, body: { value: 1, ttl: 0.2 } });
    expect(put.status).toBe(200);
    expect(put.json.expiresAt).toMatch(ISO);
    expect(isoMs(put.json.expiresAt)).toBeGreaterThanOrEqual(before + 200);
    const get = await as('GET /kv/{key}', { params: { key } });
    expect([200, 404]).toContain(get.status);
    await vi.waitFor(async () => expect((await as('GET /kv/{key}', { params: { key } })).status).toBe(404), {
      timeout: 5000,
    });
  });

  it('names are any UTF-8 up to 255 bytes: slashes, percent signs, spaces, emoji', async () => {
    for (const key of ['a/b/c', '100%', 'with space', 'k\u00e9y-\u{1F680}', 'x'.repeat(255)]) {
      expect((await as('PUT /kv/{key}', { params: { key }, body: { value: key } })).status).toBe(200);
      expect((await as('GET /kv/{key}', { params: { key } })).json).toEqual({
        key,
        value: key,
        expiresAt: null,
      });
    }
  });

  it('nx on an existing key and xx on a missing one answer 409 and write nothing', async () => {
    const key = name('kv');
    expect((await as('PUT /kv/{key}', { params: { key }, body: { value: 'first', nx: true } })).status).toBe(
      200,
    );
    const nx = await as('PUT /kv/{key}', { params: { key }, body: { value: 'second', nx: true } });
    expect(nx.status).toBe(409);
    expect(nx.json.error.code).toBe('conflict');
    expect((await as('GET /kv/{key}', { params: { key } })).json.value).toBe('first');
    const missing = name('kv');
    const xx = await as('PUT /kv/{key}', { params: { key: missing }, body: { value: 1, xx: true } });
    expect(xx.status).toBe(409);
    expect((await as('GET /kv/{key}', { params: { key: missing } })).status).toBe(404);
    expect((await as('PUT /kv/{key}', { params: { key }, body: { value: 'third', xx: true } })).status).toBe(
      200,
    );
    expect((await as('GET /kv/{key}', { params: { key } })).json.value).toBe('third');
  });

  it('GET and DELETE of a missing key answer 404 with the error body; DELETE answers 204 once', async () => {
    const key = name('kv');
    const get = await as('GET /kv/{key}', { params: { key } });
    expect(get.status).toBe(404);
    expect(get.json).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
    await as('PUT /kv/{key}', { params: { key }, body: { value: 1 } });
    const deleted = await as('DELETE /kv/{key}', { params: { key } });
    expect(deleted.status).toBe(204);
    expect(deleted.raw).toBeUndefined();
    expect((await as('DELETE /kv/{key}', { params: { key } })).status).toBe(404);
  });

  it('POST /kv/{key}/expire sets and removes a TTL; a missing key answers 404', async () => {
    const key = name('kv');
    await as('PUT /kv/{key}', { params: { key }, body: { value: 1 } });
    const set = await as('POST /kv/{key}/expire', { params: { key }, body: { ttl: 60 } });
    expect(set.status).toBe(200);
    expect(set.json).toEqual({ key, expiresAt: expect.stringMatching(ISO) });
    expect((await as('GET /kv/{key}', { params: { key } })).json.expiresAt).not.toBeNull();
    const persist = await as('POST /kv/{key}/expire', { params: { key }, body: { ttl: null } });
    expect(persist.json).toEqual({ key, expiresAt: null });
    expect((await as('GET /kv/{key}', { params: { key } })).json.expiresAt).toBeNull();
    expect(
      (await as('POST /kv/{key}/expire', { params: { key: name('kv') }, body: { ttl: 5 } })).status,
    ).toBe(404);
  });

  it('POST /kv/{key}/incr starts a missing key at 0, adds by (default 1), refuses non-integers with 409', async () => {
    const key = name('kv');
    expect((await as('POST /kv/{key}/incr', { params: { key } })).json).toEqual({ key, value: 1 });
    expect((await as('POST /kv/{key}/incr', { params: { key }, body: { by: 41 } })).json).toEqual({
      key,
      value: 42,
    });
    expect((await as('POST /kv/{key}/incr', { params: { key }, body: { by: -50 } })).json).toEqual({
      key,
      value: -8,
    });
    const text = name('kv');
    await as('PUT /kv/{key}', { params: { key: text }, body: { value: 'seven' } });
    const refused = await as('POST /kv/{key}/incr', { params: { key: text } });
    expect(refused.status).toBe(409);
    expect((await as('GET /kv/{key}', { params: { key: text } })).json.value).toBe('seven');
  });

  // sessions ------------------------------------------------------------------------------
  it('POST /sessions answers 201 with every field (absent optionals null, serviceIdentity the token’s) and the default ttl of 300 s', async () => {
    const clusterId = name('cluster');
    const response = await as('POST /sessions', { body: { clusterId } });
    expect(response.status).toBe(201);
    const session = response.json;
    expect(Object.keys(session).sort()).toEqual(
      [
        'clusterId',
        'correlationId',
        'createdAt',
        'data',
        'expiresAt',
        'lastActivity',
        'serviceIdentity',
        'sessionId',
        'userId',
      ].sort(),
    );
    expect(session).toMatchObject({
      clusterId,
      userId: null,
      correlationId: null,
      serviceIdentity: 'api-test',
      data: {},
    });
    expect(isoMs(session.expiresAt) - isoMs(session.createdAt)).toBe(300_000);
    expect((await as('GET /sessions/{id}', { params: { id: session.sessionId } })).json).toEqual(session);
  });

  it('a session lives, is found by cluster and correlation id, kept alive, and ended', async () => {
    const clusterId = name('cluster');
    const correlationId = name('corr');
    const created = (
      await as('POST /sessions', {
        body: {
          clusterId,
          correlationId,
          userId: 'u-1',
          serviceIdentity: 'agent',
          data: { step: 1 },
          ttl: 60,
        },
      })
    ).json;
    expect(created).toMatchObject({
      clusterId,
      correlationId,
      userId: 'u-1',
      serviceIdentity: 'agent',
      data: { step: 1 },
    });
    const id = created.sessionId;

    expect((await as('GET /sessions', { query: { clusterId } })).json).toEqual({ sessions: [created] });
    expect((await as('GET /sessions', { query: { correlationId } })).json).toEqual({ sessions: [created] });
    expect((await as('GET /clusters/active', { query: { limit: '1000' } })).json.clusters).toContain(
      clusterId,
    );
    expect((await as('GET /clusters/{clusterId}/active', { params: { clusterId } })).json).toEqual({
      clusterId,
      active: true,
    });

    const kept = await as('POST /sessions/{id}/keepalive', { params: { id }, body: { ttl: 600 } });
    expect(kept.status).toBe(200);
    expect(isoMs(kept.json.expiresAt)).toBeGreaterThan(isoMs(created.expiresAt));
    expect(isoMs(kept.json.expiresAt) - isoMs(kept.json.lastActivity)).toBe(600_000);

    expect((await as('DELETE /sessions/{id}', { params: { id } })).status).toBe(204);
    for (const routeKey of ['GET /sessions/{id}', 'DELETE /sessions/{id}', 'POST /sessions/{id}/keepalive']) {
      const gone = await as(routeKey, { params: { id } });
      expect(gone.status, routeKey).toBe(404);
      expect(gone.json.error.code).toBe('not_found');
    }
    expect((await as('GET /sessions', { query: { clusterId } })).json).toEqual({ sessions: [] });
    expect((await as('GET /clusters/{clusterId}/active', { params: { clusterId } })).json.active).toBe(false);
    expect((await as('GET /clusters/active', { query: { limit: '1000' } })).json.clusters).not.toContain(
      clusterId,
    );
  });

  it('an expired session is gone from every route', async () => {
    const clusterId = name('cluster');
    const { sessionId } = (await as('POST /sessions', { body: { clusterId, ttl: 0.2 } })).json;
    await vi.waitFor(
      async () => {
        expect((await as('GET /sessions/{id}', { params: { id: sessionId } })).status).toBe(404);
      },
      { timeout: 5000 },
    );
    expect((await as('GET /clusters/{clusterId}/active', { params: { clusterId } })).json.active).toBe(false);
    expect((await as('POST /sessions/{id}/keepalive', { params: { id: sessionId } })).status).toBe(404);
  });

  // queues --------------------------------------------------------------------------------
  it('send → receive → ack: 201 with an id, the message shape, 204, then the queue is empty', async () => {
    const queue = name('queue');
    const sent = await as('POST /queues/{queue}/messages', {
      params: { queue },
      body: { payload: { job: 1 } },
    });
    expect(sent.status).toBe(201);
    expect(sent.json).toEqual({ id: expect.any(String) });
    expect((await as('GET /queues/{queue}', { params: { queue } })).json).toEqual({
      queue,
      depth: 1,
      inFlight: 0,
      dead: 0,
    });

    const received = await as('POST /queues/{queue}/receive', { params: { queue } });
    expect(received.status).toBe(200);
    expect(received.json.messages).toEqual([
      {
        id: sent.json.id,
        receipt: expect.any(String),
        payload: { job: 1 },
        attempts: 1,
        enqueuedAt: expect.stringMatching(ISO),
      },
    ]);
    expect((await as('GET /queues/{queue}', { params: { queue } })).json).toEqual({
      queue,
      depth: 0,
      inFlight: 1,
      dead: 0,
    });
    const [message] = received.json.messages;
    const acked = await as('POST /queues/{queue}/messages/{id}/ack', {
      params: { queue, id: message.id },
      body: { receipt: message.receipt },
    });
    expect(acked.status).toBe(204);
    expect((await as('GET /queues/{queue}', { params: { queue } })).json).toEqual({
      queue,
      depth: 0,
      inFlight: 0,
      dead: 0,
    });
    expect((await as('POST /queues/{queue}/receive', { params: { queue } })).json).toEqual({ messages: [] });
  });

  it('a repeated dedupId answers 200 with the first id and enqueues nothing', async () => {
    const queue = name('queue');
    const first = await as('POST /queues/{queue}/messages', {
      params: { queue },
      body: { payload: 1, dedupId: 'd-1' },
    });
    const again = await as('POST /queues/{queue}/messages', {
      params: { queue },
      body: { payload: 2, dedupId: 'd-1' },
    });
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ id: first.json.id });
    expect((await as('GET /queues/{queue}', { params: { queue } })).json.depth).toBe(1);
  });

  it('receive takes up to max in FIFO order; nack makes a message visible again with attempts + 1', async () => {
    const queue = name('queue');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(
        (await as('POST /queues/{queue}/messages', { params: { queue }, body: { payload: i } })).json.id,
      );
    }
    const batch = (await as('POST /queues/{queue}/receive', { params: { queue }, body: { max: 3 } })).json
      .messages;
    expect(batch.map((m: { payload: number }) => m.payload)).toEqual([0, 1, 2]);
    const nacked = await as('POST /queues/{queue}/messages/{id}/nack', {
      params: { queue, id: batch[0].id },
      body: { receipt: batch[0].receipt },
    });
    expect(nacked.status).toBe(204);
    const next = (await as('POST /queues/{queue}/receive', { params: { queue }, body: { max: 10 } })).json
      .messages;
    expect(next.map((m: { payload: number; attempts: number }) => [m.payload, m.attempts])).toEqual([
      [0, 2],
      [3, 1],
      [4, 1],
    ]);
  });

  it('a lease that ends delivers again; the old receipt then answers 409', async () => {
    const queue = name('queue');
    await as('POST /queues/{queue}/messages', { params: { queue }, body: { payload: 'x' } });
    const [first] = (
      await as('POST /queues/{queue}/receive', { params: { queue }, body: { visibilityTimeout: 0.1 } })
    ).json.messages;
    let second: { id: string; receipt: string; attempts: number } | undefined;
    await vi.waitFor(
      async () => {
        [second] = (await as('POST /queues/{queue}/receive', { params: { queue } })).json.messages;
        expect(second).toBeDefined();
      },
      { timeout: 5000 },
    );
    expect(second!.attempts).toBe(2);
    const stale = await as('POST /queues/{queue}/messages/{id}/ack', {
      params: { queue, id: first.id },
      body: { receipt: first.receipt },
    });
    expect(stale.status).toBe(409);
    expect(stale.json.error.code).toBe('conflict');
    const fresh = await as('POST /queues/{queue}/messages/{id}/ack', {
      params: { queue, id: second!.id },
      body: { receipt: second!.receipt },
    });
    expect(fresh.status).toBe(204);
  });

  it('receive with wait answers a message sent while it waits', async () => {
    const queue = name('queue');
    const waiting = as('POST /queues/{queue}/receive', { params: { queue }, body: { wait: 10 } });
    await as('POST /queues/{queue}/messages', { params: { queue }, body: { payload: 'late' } });
    const { json } = await waiting;
    expect(json.messages.map((m: { payload: string }) => m.payload)).toEqual(['late']);
  });

  // events --------------------------------------------------------------------------------
  it('POST /channels/{channel}/messages answers 202; history is oldest first with increasing ids', async () => {
    const channel = name('channel');
    const published: { id: string; publishedAt: string }[] = [];
    for (const message of ['a', { b: 2 }, [3]]) {
      const response = await as('POST /channels/{channel}/messages', {
        params: { channel },
        body: { message },
      });
      expect(response.status).toBe(202);
      expect(response.json).toEqual({ id: expect.any(String), publishedAt: expect.stringMatching(ISO) });
      published.push(response.json);
    }
    expect([...published.map((p) => p.id)].sort()).toEqual(published.map((p) => p.id));
    const history = await as('GET /channels/{channel}/messages', { params: { channel } });
    expect(history.json).toEqual({
      messages: [
        { id: published[0]!.id, channel, message: 'a', publishedAt: published[0]!.publishedAt },
        { id: published[1]!.id, channel, message: { b: 2 }, publishedAt: published[1]!.publishedAt },
        { id: published[2]!.id, channel, message: [3], publishedAt: published[2]!.publishedAt },
      ],
    });
    const after = await as('GET /channels/{channel}/messages', {
      params: { channel },
      query: { after: published[0]!.id, limit: '1' },
    });
    expect(after.json.messages.map((m: { id: string }) => m.id)).toEqual([published[1]!.id]);
  });

  // tokens --------------------------------------------------------------------------------
  it('POST /tokens shows the secret once; GET /tokens lists it without; DELETE revokes it; both are audited', async () => {
    const issued = await as('POST /tokens', {
      body: { identity: 'executor-1', scopes: ['queues:receive'], resources: ['jobs-*'], ttl: 3600 },
    });
    expect(issued.status).toBe(201);
    expect(issued.json).toEqual({
      id: expect.any(String),
      token: expect.any(String),
      identity: 'executor-1',
      scopes: ['queues:receive'],
      resources: ['jobs-*'],
      expiresAt: expect.stringMatching(ISO),
    });
    const { id, token: secret } = issued.json;
    const listed = (await as('GET /tokens', { query: { limit: '1000' } })).json.tokens.find(
      (t: { id: string }) => t.id === id,
    );
    expect(listed).toEqual({
      id,
      identity: 'executor-1',
      scopes: ['queues:receive'],
      resources: ['jobs-*'],
      createdAt: expect.stringMatching(ISO),
      expiresAt: issued.json.expiresAt,
    });
    expect(JSON.stringify((await as('GET /tokens', { query: { limit: '1000' } })).json)).not.toContain(
      secret,
    );

    const queue = `jobs-${name('q')}`;
    expect((await call('POST /queues/{queue}/receive', { token: secret, params: { queue } })).status).toBe(
      200,
    );
    expect((await as('DELETE /tokens/{id}', { params: { id } })).status).toBe(204);
    expect((await call('POST /queues/{queue}/receive', { token: secret, params: { queue } })).status).toBe(
      401,
    );
    expect((await as('DELETE /tokens/{id}', { params: { id } })).status).toBe(404);

    const audit = await storage().audit.query({ identity: 'api-test', limit: 1000 });
    const actions = audit.filter((entry) => entry.resource === id).map((entry) => entry.action);
    expect(actions.sort()).toEqual(['tokens.issue', 'tokens.revoke']);
    expect(JSON.stringify(audit)).not.toContain(secret);
  });

  it('an admin limited to some resources issues tokens only within them', async () => {
    const { token: limited } = await storage().tokens.issue({
      identity: 'team-a-admin',
      scopes: ['admin'],
      resources: ['team-a-*'],
    });
    const before = (await as('GET /tokens', { query: { limit: '1000' } })).json.tokens.length;
    for (const resources of [['*'], ['team-b-*'], ['team-a-*', 'other'], ['*team-a-*']]) {
      const refused = await call('POST /tokens', {
        token: limited,
        body: { identity: 'x', scopes: ['kv:read'], resources },
      });
      expect(refused.status, JSON.stringify(resources)).toBe(403);
      expect(refused.json.error.code).toBe('forbidden');
    }
    const unrestricted = await call('POST /tokens', {
      token: limited,
      body: { identity: 'x', scopes: ['kv:read'] },
    });
    expect(unrestricted.status).toBe(403);
    expect((await as('GET /tokens', { query: { limit: '1000' } })).json.tokens.length).toBe(before);
    for (const resources of [['team-a-*'], ['team-a-jobs'], ['team-a-x*']]) {
      const issued = await call('POST /tokens', {
        token: limited,
        body: { identity: 'x', scopes: ['kv:read'], resources },
      });
      expect(issued.status, JSON.stringify(resources)).toBe(201);
    }
  });

  it('an admin limited to some resources lists and revokes only tokens within them', async () => {
    const { token: limited } = await storage().tokens.issue({
      identity: 'team-a-admin',
      scopes: ['admin'],
      resources: ['team-a-*'],
    });
    const other = await storage().tokens.issue({
      identity: 'team-b',
      scopes: ['kv:read'],
      resources: ['team-b-*'],
    });
    const own = await storage().tokens.issue({
      identity: 'team-a',
      scopes: ['kv:read'],
      resources: ['team-a-x'],
    });
    const listed = (await call('GET /tokens', { token: limited })).json.tokens.map(
      (t: { id: string }) => t.id,
    );
    expect(listed).toContain(own.id);
    expect(listed).not.toContain(other.id);
    const refused = await call('DELETE /tokens/{id}', { token: limited, params: { id: other.id } });
    expect(refused.status).toBe(403);
    expect(await storage().tokens.verify(other.token)).toBeDefined();
    expect((await call('DELETE /tokens/{id}', { token: limited, params: { id: own.id } })).status).toBe(204);
    expect(await storage().tokens.verify(own.token)).toBeUndefined();
  });

  it('an X-Correlation-Id that is not a valid name is replaced by the request id; the write still answers', async () => {
    const ids: string[] = [];
    for (const header of ['\u00e9'.repeat(200), 'abc\u0085def', '']) {
      const issued = await as('POST /tokens', {
        body: { identity: 'corr', scopes: ['kv:read'] },
        headers: { 'x-correlation-id': header },
      });
      expect(issued.status).toBe(201);
      expect(await storage().tokens.verify(issued.json.token)).toBeDefined();
      const revoked = await as('DELETE /tokens/{id}', {
        params: { id: issued.json.id },
        headers: { 'x-correlation-id': header },
      });
      expect(revoked.status).toBe(204);
      ids.push(issued.json.id);
    }
    // Audited with the request id in place of the header (a bad header must not lose the entry).
    const entries = await storage().audit.query({ identity: 'api-test', limit: 1000 });
    for (const id of ids) {
      const mine = entries.filter((entry) => entry.resource === id);
      expect(mine.map((entry) => entry.action).sort()).toEqual(['tokens.issue', 'tokens.revoke']);
      for (const entry of mine) expect(entry.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('an audit entry that cannot be written after a change', () => {
  it('is logged as an error and the change still answers (the token secret is not lost)', async () => {
    const base = createStorage({ backend: 'memory' });
    const failingAudit = {
      append: async () => {
        throw new Error('audit store down');
      },
      query: base.audit.query,
    };
    const storage = new Proxy(base, {
      get: (target, property) => (property === 'audit' ? failingAudit : Reflect.get(target, property)),
    });
    const { logger } = await import('../../functions/runtime/logger.js');
    const errors = vi.spyOn(logger, 'error');
    try {
      serveFrom(storage);
      const { token } = await base.tokens.issue({ identity: 'admin', scopes: ['admin'] });
      const issued = await call('POST /tokens', { token, body: { identity: 'x', scopes: ['kv:read'] } });
      expect(issued.status).toBe(201);
      expect(await base.tokens.verify(issued.json.token)).toBeDefined();
      expect((await call('DELETE /tokens/{id}', { token, params: { id: issued.json.id } })).status).toBe(204);
      expect(errors).toHaveBeenCalledWith(
        'audit entry not written',
        expect.objectContaining({ error: expect.any(Error) }),
      );
    } finally {
      errors.mockRestore();
      await base.close();
    }
  });
});
