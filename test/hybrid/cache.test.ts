/**
 * The isClusterActive read-through cache: sessions on PostgreSQL, answers cached in Redis (the
 * shared local server, under this test's own key prefix), invalidated by create, end and
 * keepAlive, and never "active" once the cluster's last session ended or expired.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { HybridMetric } from '../../lib/storage/hybrid/index.js';
import { hybridControl } from '../../lib/storage/index.js';
import { name, sleep } from '../support/helpers.js';
import { type HybridHandle, hybridStorage, hybridUnavailable } from './support.js';

const unavailable = await hybridUnavailable();
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

describe.skipIf(unavailable !== undefined)('hybrid: isClusterActive read-through cache', () => {
  const handles: HybridHandle[] = [];
  const metrics: HybridMetric[] = [];
  const open = (negativeTtlMs = 1000) => {
    const handle = hybridStorage(redisUrl, {
      cache: { negativeTtlMs },
      operationTimeoutMs: 5000,
      metrics: (m) => metrics.push(m),
    });
    handles.push(handle);
    return { s: handle.storage, control: hybridControl(handle.storage)! };
  };
  afterEach(async () => {
    await Promise.all(handles.splice(0).map((h) => h.dispose()));
    metrics.length = 0;
  });

  it('a second lookup is a hit; the hit ratio is counted and reported as metrics', async () => {
    const { s, control } = open();
    const cluster = name('c');
    await s.sessions.create({ clusterId: cluster });
    expect(await s.sessions.isClusterActive(cluster)).toBe(true);
    expect(await s.sessions.isClusterActive(cluster)).toBe(true);
    expect(await s.sessions.isClusterActive(cluster)).toBe(true);
    const { cache } = control.stats();
    expect(cache).toMatchObject({ hits: 2, misses: 1 });
    expect(cache.hitRatio).toBeCloseTo(2 / 3);
    expect(metrics.filter((m) => m.name === 'CacheHit')).toHaveLength(2);
    expect(metrics.filter((m) => m.name === 'CacheMiss')).toHaveLength(1);
  });

  it('create invalidates a cached "inactive" at once', async () => {
    const { s, control } = open(60_000);
    const cluster = name('c');
    expect(await s.sessions.isClusterActive(cluster)).toBe(false);
    expect(await s.sessions.isClusterActive(cluster)).toBe(false);
    expect(control.stats().cache.hits).toBe(1);
    await s.sessions.create({ clusterId: cluster });
    expect(await s.sessions.isClusterActive(cluster)).toBe(true);
  });

  it('end of the last session invalidates a cached "active" at once; ending one of two does not end the cluster', async () => {
    const { s, control } = open();
    const cluster = name('c');
    const a = await s.sessions.create({ clusterId: cluster, ttl: 600 });
    const b = await s.sessions.create({ clusterId: cluster, ttl: 600 });
    expect(await s.sessions.isClusterActive(cluster)).toBe(true);
    expect(await s.sessions.isClusterActive(cluster)).toBe(true);
    expect(control.stats().cache.hits).toBeGreaterThanOrEqual(1);
    await s.sessions.end(a.sessionId);
    expect(await s.sessions.isClusterActive(cluster)).toBe(true);
    await s.sessions.end(b.sessionId);
    for (let i = 0; i < 5; i++) expect(await s.sessions.isClusterActive(cluster)).toBe(false);
  });

  it('a cached "active" lasts no longer than the last live session: expiry answers inactive without any write', async () => {
    const { s, control } = open();
    const cluster = name('c');
    await s.sessions.create({ clusterId: cluster, ttl: 0.8 });
    expect(await s.sessions.isClusterActive(cluster)).toBe(true);
    expect(await s.sessions.isClusterActive(cluster)).toBe(true);
    const hits = control.stats().cache.hits;
    expect(hits).toBeGreaterThanOrEqual(1);
    await sleep(900);
    expect(await s.sessions.isClusterActive(cluster)).toBe(false);
  });

  it('keepAlive invalidates: a shortened session stops the cluster at its new expiry, an extended one keeps it', async () => {
    const { s } = open();
    const shortened = name('c');
    const extended = name('c');
    const a = await s.sessions.create({ clusterId: shortened, ttl: 600 });
    const b = await s.sessions.create({ clusterId: extended, ttl: 0.8 });
    expect(await s.sessions.isClusterActive(shortened)).toBe(true);
    expect(await s.sessions.isClusterActive(extended)).toBe(true);
    await s.sessions.keepAlive(a.sessionId, 0.3);
    await s.sessions.keepAlive(b.sessionId, 600);
    expect(await s.sessions.isClusterActive(extended)).toBe(true);
    await sleep(1000);
    expect(await s.sessions.isClusterActive(shortened)).toBe(false);
    expect(await s.sessions.isClusterActive(extended)).toBe(true);
  });

  it('readers racing an end: every lookup that starts after end() answered says inactive', async () => {
    const { s } = open();
    const cluster = name('c');
    const session = await s.sessions.create({ clusterId: cluster, ttl: 600 });
    let reading = true;
    // Readers fill the cache from PostgreSQL while the end commits: the stale-fill race.
    const readers = Array.from({ length: 4 }, async () => {
      while (reading) await s.sessions.isClusterActive(cluster);
    });
    await sleep(100);
    await s.sessions.end(session.sessionId);
    const after = await Promise.all(Array.from({ length: 20 }, () => s.sessions.isClusterActive(cluster)));
    reading = false;
    await Promise.all(readers);
    expect(after).toEqual(Array(20).fill(false));
    for (let i = 0; i < 10; i++) expect(await s.sessions.isClusterActive(cluster)).toBe(false);
  });

  it('another storage (another container) sees the invalidation: the cache lives in Redis', async () => {
    const first = open();
    const cluster = name('c');
    const session = await first.s.sessions.create({ clusterId: cluster, ttl: 600 });
    expect(await first.s.sessions.isClusterActive(cluster)).toBe(true);
    expect(await first.s.sessions.isClusterActive(cluster)).toBe(true);
    // A second storage over the same prefix and schema is another Lambda container.
    const handle = handles[0]!;
    const { createStorage } = await import('../../lib/storage/index.js');
    const second = createStorage(
      {
        backend: 'hybrid',
        keyPrefix: handle.keyPrefix,
        redis: { url: redisUrl },
        postgresql: {
          driver: 'pg',
          url: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test',
          schema: handle.schema,
        },
      },
      { hybrid: { operationTimeoutMs: 5000 } },
    );
    try {
      expect(await second.sessions.isClusterActive(cluster)).toBe(true);
      expect(hybridControl(second)!.stats().cache.hits).toBe(1);
      await second.sessions.end(session.sessionId);
      expect(await first.s.sessions.isClusterActive(cluster)).toBe(false);
    } finally {
      await second.close();
    }
  });
});
