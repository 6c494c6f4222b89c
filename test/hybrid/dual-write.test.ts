/**
 * Dual-write (`hybrid.sync.enabled` / `migration.dualWrite`): writes reach the primary and the
 * other backend; a failed secondary write is retried, counted, journaled durably and replayed,
 * and in async mode never fails or holds up the primary's answer.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { hashToken } from '../../lib/storage/facade.js';
import type { HybridMetric } from '../../lib/storage/hybrid/index.js';
import { hybridControl } from '../../lib/storage/index.js';
import { name } from '../support/helpers.js';
import { type HybridHandle, hybridStorage, hybridUnavailable, PrivateRedis } from './support.js';

const unavailable = await hybridUnavailable();
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const allPostgres = {
  sessions: 'postgresql',
  authentication: 'postgresql',
  audit: 'postgresql',
  queues: 'postgresql',
  cache: 'postgresql',
  pubsub: 'postgresql',
} as const;

describe.skipIf(unavailable !== undefined)('hybrid: dual-write', () => {
  const handles: HybridHandle[] = [];
  afterEach(async () => {
    await Promise.all(handles.splice(0).map((h) => h.dispose()));
  });

  for (const mode of ['sync', 'async'] as const) {
    it(`${mode}: kv, sessions, tokens, audit and connections land on both backends; lag is measured`, async () => {
      const metrics: HybridMetric[] = [];
      const handle = hybridStorage(redisUrl, {
        sync: { enabled: true, async: mode === 'async' },
        operationTimeoutMs: 5000,
        metrics: (m) => metrics.push(m),
      });
      handles.push(handle);
      const s = handle.storage;
      const control = hybridControl(s)!;
      const { redis, postgresql } = control.drivers;

      const key = name('k');
      await s.kv.set(key, { v: 1 }, { ttl: 600 });
      await s.kv.incr(`${key}:n`, 5);
      const session = await s.sessions.create({ clusterId: name('c'), data: { a: 1 } });
      const token = await s.tokens.issue({ identity: name('who'), scopes: ['kv:read'] });
      const identity = name('who');
      await s.audit.append({ identity, action: 'dual.write' });
      const connectionId = name('conn');
      await s.connections.register({
        connectionId,
        identity,
        tokenId: token.id,
        tokenExpiresAt: new Date(Date.now() + 600_000).toISOString(),
        scopes: ['events:subscribe'],
        resources: ['*'],
      });
      await s.connections.subscribe(connectionId, 'ch');
      const gone = name('k');
      await s.kv.set(gone, 1);
      await s.kv.delete(gone);
      await control.flush();

      for (const d of [redis!, postgresql!]) {
        expect(await d.kv.get(key)).toEqual({ v: 1 });
        expect((await d.kv.ttlMs(key)) ?? 0).toBeGreaterThan(500_000);
        expect(await d.kv.get(`${key}:n`)).toBe(5);
        expect(await d.kv.get(gone)).toBeUndefined();
        expect(await d.sessions.get(session.sessionId)).toMatchObject({
          clusterId: session.clusterId,
          data: { a: 1 },
        });
        expect((await d.tokens.findByHash(hashToken(token.token)))?.id).toBe(token.id);
        const entries = await d.audit.query({
          identity,
          sinceMs: undefined,
          untilMs: undefined,
          limit: 10,
          order: 'asc',
        });
        expect(entries.map((e) => e.action)).toEqual(['dual.write']);
        expect((await d.connections.get(connectionId))?.channels).toEqual(['ch']);
      }
      const { sync } = control.stats();
      expect(sync.writes).toBeGreaterThanOrEqual(8);
      expect(sync.failures).toBe(0);
      expect(sync.lastLagMs).toBeGreaterThanOrEqual(0);
      expect(metrics.filter((m) => m.name === 'SyncLag').length).toBe(sync.writes);
    });
  }

  it("a mirrored session and audit entry keep the primary's times, not the moment the mirror ran", async () => {
    const handle = hybridStorage(redisUrl, {
      sync: { enabled: true, async: true },
      operationTimeoutMs: 5000,
    });
    handles.push(handle);
    const s = handle.storage;
    const control = hybridControl(s)!;
    const { redis, postgresql } = control.drivers;
    const created = await s.sessions.create({ clusterId: name('c'), ttl: 600 });
    await control.flush();
    // The mirror runs after the primary answered (milliseconds later here, seconds under load).
    await s.sessions.keepAlive(created.sessionId, 900);
    await control.flush();
    const [a, b] = [
      await redis!.sessions.get(created.sessionId),
      await postgresql!.sessions.get(created.sessionId),
    ];
    expect(b).toEqual(a);
    // An audit entry mirrored to PostgreSQL keeps the time Redis gave it.
    const who = name('who');
    const entry = await s.audit.append({ identity: who, action: 'mirrored' });
    await control.flush();
    const [mirrored] = await postgresql!.audit.query({
      identity: who,
      sinceMs: undefined,
      untilMs: undefined,
      limit: 10,
      order: 'asc',
    });
    expect(mirrored?.at).toBe(entry.at);
    // A replay written after the fact keeps the times it is given, on every backend.
    for (const d of [redis!, postgresql!]) {
      const id = `${name('s')}`;
      const times = {
        createdAtMs: Date.now() - 60_000,
        lastActivityMs: Date.now() - 30_000,
        expiresAtMs: Date.now() + 120_000,
      };
      const made = await d.sessions.create({
        sessionId: id,
        clusterId: 'c',
        userId: null,
        correlationId: null,
        serviceIdentity: null,
        dataJson: '{}',
        ttlMs: 1000,
        times,
      });
      expect([made.createdAt, made.lastActivity, made.expiresAt]).toEqual(
        [times.createdAtMs, times.lastActivityMs, times.expiresAtMs].map((t) => new Date(t).toISOString()),
      );
      const later = { lastActivityMs: Date.now() - 1000, expiresAtMs: Date.now() + 300_000 };
      const kept = await d.sessions.keepAlive(id, 5, later);
      expect([kept?.createdAt, kept?.lastActivity, kept?.expiresAt]).toEqual(
        [times.createdAtMs, later.lastActivityMs, later.expiresAtMs].map((t) => new Date(t).toISOString()),
      );
      expect(await d.sessions.get(id)).toEqual(kept);
    }
  });

  it('queues and events are not mirrored (a message would be delivered from both sides)', async () => {
    const handle = hybridStorage(redisUrl, {
      sync: { enabled: true, async: false },
      operationTimeoutMs: 5000,
    });
    handles.push(handle);
    const queue = name('q');
    await handle.storage.queues.send(queue, 'once');
    const { postgresql } = hybridControl(handle.storage)!.drivers;
    expect((await postgresql!.queues.stats(queue)).depth).toBe(0);
    expect(await handle.storage.queues.stats(queue)).toMatchObject({ depth: 1 });
  });
});

describe.skipIf(unavailable !== undefined)('hybrid: dual-write with the secondary down', () => {
  let redis: PrivateRedis;
  const handles: HybridHandle[] = [];
  beforeAll(async () => {
    redis = await PrivateRedis.start();
  });
  afterEach(async () => {
    if (!(await redis.cli('ping').catch(() => '')).includes('PONG')) await redis.start();
    await Promise.all(handles.splice(0).map((h) => h.dispose()));
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('async: the primary answers, the secondary write is retried and counted, then journaled and replayed once Redis is back', {
    timeout: 60_000,
  }, async () => {
    const handle = hybridStorage(redis.url, {
      routing: allPostgres,
      fallback: { enabled: false },
      sync: { enabled: true, async: true },
    });
    handles.push(handle);
    const s = handle.storage;
    const control = hybridControl(s)!;
    await s.kv.set('warm', 0);
    await control.flush();
    await redis.shutdown();

    const keys = Array.from({ length: 5 }, (_, i) => `during:${i}`);
    // Each answer comes from PostgreSQL while the mirror to the stopped Redis is still failing.
    for (const [i, key] of keys.entries()) expect(await s.kv.set(key, i)).toBe(true);
    expect(control.stats().sync.pending).toBeGreaterThan(0);
    for (const [i, key] of keys.entries()) expect(await s.kv.get(key)).toBe(i);
    await control.flush();
    const { sync } = control.stats();
    expect(sync.retries).toBeGreaterThanOrEqual(keys.length * 2);
    expect(sync.failures).toBe(keys.length);
    expect(sync.journaled).toBe(keys.length);

    await redis.start();
    await vi.waitFor(
      async () => {
        await control.reconcile();
        for (const [i, key] of keys.entries()) expect(await control.drivers.redis!.kv.get(key)).toBe(i);
      },
      { timeout: 15_000 },
    );
  });

  it('a journaled mirror replays the current value: it never overwrites a newer mirror that succeeded meanwhile', {
    timeout: 60_000,
  }, async () => {
    const handle = hybridStorage(redis.url, {
      routing: allPostgres,
      fallback: { enabled: false },
      sync: { enabled: true, async: false },
      syncAttempts: 1,
    });
    handles.push(handle);
    const s = handle.storage;
    const control = hybridControl(s)!;
    await s.kv.set('warm', 0);
    await redis.shutdown();
    await s.kv.set('k', 'older');
    expect(control.stats().sync.journaled).toBe(1);
    await redis.start();
    await vi.waitFor(
      async () => {
        await s.kv.set('k', 'newer');
        expect(await control.drivers.redis!.kv.get('k')).toBe('newer');
      },
      { timeout: 15_000 },
    );
    await control.reconcile();
    expect(await control.drivers.redis!.kv.get('k')).toBe('newer');
  });

  it('sync: a secondary that stays down does not fail the primary write; it is journaled for later', {
    timeout: 60_000,
  }, async () => {
    const handle = hybridStorage(redis.url, {
      routing: allPostgres,
      fallback: { enabled: false },
      sync: { enabled: true, async: false },
      syncAttempts: 2,
    });
    handles.push(handle);
    const s = handle.storage;
    const control = hybridControl(s)!;
    await s.kv.set('warm', 0);
    await redis.shutdown();
    const session = await s.sessions.create({ clusterId: 'c1' });
    expect(await control.drivers.postgresql!.sessions.get(session.sessionId)).toBeDefined();
    expect(control.stats().sync).toMatchObject({ failures: 1, retries: 1, journaled: 1 });
    await redis.start();
    await vi.waitFor(
      async () => {
        await control.reconcile();
        expect((await control.drivers.redis!.sessions.get(session.sessionId))?.clusterId).toBe('c1');
      },
      { timeout: 15_000 },
    );
  });
});
