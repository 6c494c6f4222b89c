/**
 * Regressions of the hybrid's recovery path (each failed before its fix): a breaker that closed
 * before the outage's journal was replayed, queue sends stranded on the fallback, two
 * reconcilers overlapping on one journal, a cold start counted as an outage (a valid token
 * refused), and a long poll that waited twice. Private redis-servers and a PostgreSQL proxy
 * only; timing bounds are generous.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BackendUnavailableError } from '../../lib/errors.js';
import { hybridControl } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { sleep } from '../support/helpers.js';
import { type HybridHandle, hybridStorage, hybridUnavailable, PgProxy, PrivateRedis } from './support.js';

const unavailable = await hybridUnavailable();

const ctl = (s: Storage) => hybridControl(s)!;

async function drain(s: Storage, queue: string): Promise<unknown[]> {
  const got: unknown[] = [];
  for (;;) {
    const batch = await s.queues.receive(queue, { max: 10 });
    if (batch.length === 0) return got;
    for (const m of batch) {
      got.push(m.payload);
      await s.queues.ack(queue, m.id, m.receipt);
    }
  }
}

describe.skipIf(unavailable !== undefined)('hybrid: recovery', () => {
  let redis: PrivateRedis;
  let proxy: PgProxy;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
    proxy = await PgProxy.start();
  });
  afterAll(async () => {
    await redis?.cli('client', 'unpause').catch(() => {});
    await proxy?.stop();
    await redis?.stop();
  });

  it('a breaker stays open while the fallback journal cannot be read; after the replay reads and later writes are current', async () => {
    proxy.setDown(false);
    const handle = hybridStorage(redis.url, {}, { proxy });
    const s = handle.storage;
    try {
      await s.kv.set('k', 'v0');
      await s.sessions.activeClusters(); // PostgreSQL connected and migrated
      await redis.shutdown();
      await s.kv.set('k', 'A'); // served by PostgreSQL, journaled there
      proxy.setDown(true); // PostgreSQL blips while Redis comes back
      await redis.start();
      await sleep(1500); // several probes: Redis answers, PostgreSQL's journal cannot be read
      expect(ctl(s).stats().breakers.redis).not.toBe('closed');
      proxy.setDown(false);
      await vi.waitFor(() => expect(ctl(s).stats().breakers.redis).toBe('closed'), { timeout: 20_000 });
      expect(await s.kv.get('k')).toBe('A');
      await s.kv.set('k', 'B');
      await ctl(s).reconcile();
      expect(await s.kv.get('k')).toBe('B');
    } finally {
      proxy.setDown(false);
      await handle.dispose();
    }
  });

  it('a send to the fallback after another container replayed the queue is journaled and reaches the primary', async () => {
    const handleA = hybridStorage(redis.url, { probeIntervalMs: 5000 });
    const A = handleA.storage;
    let handleB: HybridHandle | undefined;
    try {
      await A.queues.send('jobs', { m: 0 });
      await A.sessions.activeClusters();
      await redis.shutdown();
      await A.queues.send('jobs', { m: 1 }); // fallback, journaled
      await redis.start();
      // Another container replays what A journaled while A's breaker is still open.
      handleB = hybridStorage(redis.url, {}, { reuse: handleA });
      const B = handleB.storage;
      await ctl(B).reconcile();
      expect(ctl(A).stats().breakers.redis).toBe('open');
      await A.queues.send('jobs', { m: 2 }); // the fallback again
      await vi.waitFor(() => expect(ctl(A).stats().breakers.redis).toBe('closed'), { timeout: 20_000 });
      await ctl(A).reconcile();
      await ctl(B).reconcile();
      const got = await drain(B, 'jobs');
      expect(got).toEqual(expect.arrayContaining([{ m: 0 }, { m: 1 }, { m: 2 }]));
      expect((await ctl(A).drivers.postgresql!.queues.stats('jobs')).depth).toBe(0);
    } finally {
      await handleB?.storage.close();
      await handleA.dispose();
    }
  });

  it('a reconciler that lost the journal lock applies nothing more: a later acknowledged write stays', async () => {
    const lock = { journalLockMs: 1500 };
    const handleP = hybridStorage(redis.url, lock);
    const P = handleP.storage;
    let handleA: HybridHandle | undefined;
    let handleB: HybridHandle | undefined;
    try {
      await P.kv.set('k0', 0);
      await P.sessions.activeClusters();
      await redis.shutdown();
      // Journaled in PostgreSQL (distinct keys: entries of one key in a batch collapse into one write).
      for (let i = 1; i <= 20; i++) await P.kv.set(`k${i}`, i);
      await P.close();
      await redis.start();

      handleA = hybridStorage(redis.url, lock, { reuse: handleP });
      const A = handleA.storage;
      const rk = ctl(A).drivers.redis!.kv;
      const realSet = rk.set.bind(rk);
      let writes = 0;
      let frozen: Promise<void> | undefined;
      // A's third write stalls past the lock (a container frozen mid-replay), the others are slow.
      rk.set = async (...args: Parameters<typeof rk.set>) => {
        if (!/^k\d+$/.test(args[0])) return realSet(...args);
        writes++;
        if (writes === 3) {
          const stall = sleep(3000);
          frozen = stall;
          await stall;
        } else await sleep(50);
        return realSet(...args);
      };
      const aRun = ctl(A).reconcile();
      await vi.waitFor(() => expect(frozen).toBeDefined(), { timeout: 10_000 });
      await sleep(2000); // A's lock and its entries' lease end
      handleB = hybridStorage(redis.url, lock, { reuse: handleP });
      const B = handleB.storage;
      expect(await ctl(B).reconcile()).toBeGreaterThan(0);
      expect(await B.kv.get('k20')).toBe(20);
      await frozen; // A's stalled write landed (it was under way before B took over)
      await sleep(100);
      await B.kv.set('k4', 'fresh'); // the entry A would apply next
      await aRun;
      await sleep(500);
      expect(await B.kv.get('k4')).toBe('fresh');
      expect(writes).toBe(3); // A stopped at its next entry
    } finally {
      await handleB?.storage.close();
      await handleA?.storage.close();
      await handleP.dispose();
    }
  });

  it('a 1 s replay retry is not held up by a pending 60 s sync-interval retry', async () => {
    const handle = hybridStorage(redis.url, {
      sync: { enabled: true, async: false },
      syncAttempts: 1,
      syncIntervalMs: 60_000,
    });
    const s = handle.storage;
    const control = ctl(s);
    try {
      await s.sessions.activeClusters();
      // A mirror refused once: journaled, retried after the 60 s sync interval.
      const pgKv = control.drivers.postgresql!.kv;
      const realSet = pgKv.set.bind(pgKv);
      pgKv.set = async () => {
        pgKv.set = realSet;
        throw new BackendUnavailableError('postgresql', 'refused', { retryable: false });
      };
      await s.kv.set('mirrored', 1);
      expect(control.stats().sync.journaled).toBe(1);
      await redis.shutdown();
      await s.queues.send('jobs', { m: 'during' }); // on the PostgreSQL fallback, journaled
      // Leased during the outage: the replay finds it in flight and retries after 1 s.
      expect(await s.queues.receive('jobs', { visibilityTimeout: 1 })).toHaveLength(1);
      await redis.start();
      await vi.waitFor(() => expect(control.stats().breakers.redis).toBe('closed'), { timeout: 20_000 });
      await vi.waitFor(
        async () => expect(await control.drivers.redis!.queues.stats('jobs')).toMatchObject({ depth: 1 }),
        { timeout: 15_000 },
      );
    } finally {
      await handle.dispose();
    }
  });

  it('a long poll against a hung primary takes about its wait, not twice', async () => {
    const handle = hybridStorage(redis.url);
    const s = handle.storage;
    try {
      await s.queues.stats('q');
      await s.sessions.activeClusters();
      await redis.cli('client', 'pause', '6000', 'ALL');
      const started = Date.now();
      const got = await s.queues.receive('q', { wait: 4 });
      const took = Date.now() - started;
      expect(got).toEqual([]);
      expect(took).toBeLessThan(7000); // twice the wait was ~8.5 s
    } finally {
      await redis.cli('client', 'unpause').catch(() => {});
      await handle.dispose();
    }
  });

  it('a slow first PostgreSQL connect is not an outage; a token the fallback cannot have is a 503, never a 401', async () => {
    proxy.setDown(false);
    const handle = hybridStorage(redis.url, {}, { proxy });
    const s = handle.storage;
    // Issued (and the schema made) through a first storage, then a cold container.
    const first = hybridStorage(redis.url, {}, { reuse: handle });
    const issued = await first.storage.tokens.issue({ identity: 'svc', scopes: ['kv:read'] });
    await first.storage.close();
    try {
      proxy.connectDelayMs = 700;
      expect((await s.tokens.verify(issued.token))?.identity).toBe('svc');
      expect(ctl(s).stats().breakers.postgresql).toBe('closed');
      proxy.connectDelayMs = 0;

      proxy.setDown(true);
      await expect(s.tokens.verify(issued.token)).rejects.toBeInstanceOf(BackendUnavailableError);
      expect(ctl(s).stats().breakers.postgresql).not.toBe('closed');
      // Issued during the outage: the fallback has it.
      const during = await s.tokens.issue({ identity: 'during', scopes: ['kv:read'] });
      expect((await s.tokens.verify(during.token))?.identity).toBe('during');
      await expect(s.sessions.get('no-such-session')).rejects.toBeInstanceOf(BackendUnavailableError);
      proxy.setDown(false);
      await vi.waitFor(() => expect(ctl(s).stats().breakers.postgresql).toBe('closed'), { timeout: 20_000 });
      expect((await s.tokens.verify(issued.token))?.identity).toBe('svc');
      expect((await s.tokens.verify(during.token))?.identity).toBe('during');
      expect(await s.sessions.get('no-such-session')).toBeUndefined();
    } finally {
      proxy.connectDelayMs = 0;
      proxy.setDown(false);
      await handle.dispose();
    }
  });
});
