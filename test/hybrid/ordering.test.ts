/**
 * Order across containers during a recovery, and the edges of journaling: a container that never
 * saw the outage writes to the recovered primary while another container's journal still waits
 * (its newer write must survive the replay); a fallback write whose journal entry cannot be
 * written is not left behind on the fallback; a reconciler that lost its lock between two writes
 * of one entry does not make the second. Private redis-server and own schema; generous bounds.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BackendUnavailableError } from '../../lib/errors.js';
import { hybridControl } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { sleep } from '../support/helpers.js';
import { type HybridHandle, hybridStorage, hybridUnavailable, PrivateRedis } from './support.js';

const unavailable = await hybridUnavailable();

const ctl = (s: Storage) => hybridControl(s)!;
const JOURNAL = '__kst_hybrid_journal';

/** Makes the Redis driver's `kv.set` of keys starting with `prefix` slow (a replay under way for a while). */
function slowSets(s: Storage, prefix: string, ms: number): { count: () => number } {
  const rk = ctl(s).drivers.redis!.kv;
  const realSet = rk.set.bind(rk);
  let count = 0;
  rk.set = async (...args: Parameters<typeof rk.set>) => {
    if (args[0].startsWith(prefix)) {
      count++;
      await sleep(ms);
    }
    return realSet(...args);
  };
  return { count: () => count };
}

describe.skipIf(unavailable !== undefined)('hybrid: ordering across containers', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** P writes `k1` = 1 … `kn` = n during a Redis outage (journaled in PostgreSQL) and dies; Redis comes back. */
  async function outageLeftBehind(n: number, options = {}): Promise<HybridHandle> {
    const handleP = hybridStorage(redis.url, { probeIntervalMs: 60_000, ...options });
    const P = handleP.storage;
    await P.kv.set(`k${n}`, 0);
    await P.sessions.activeClusters(); // PostgreSQL connected and migrated
    await redis.shutdown();
    for (let i = 1; i <= n; i++) await P.kv.set(`k${i}`, i);
    expect(ctl(P).stats().breakers.redis).toBe('open');
    await P.close();
    await redis.start();
    return handleP;
  }

  it("a write through a container that never saw the outage survives another container's slower replay", async () => {
    const handleP = await outageLeftBehind(30);
    let handleA: HybridHandle | undefined;
    let handleB: HybridHandle | undefined;
    try {
      handleA = hybridStorage(redis.url, {}, { reuse: handleP });
      const A = handleA.storage;
      const slow = slowSets(A, 'k', 40);
      const replay = ctl(A).reconcile();
      await vi.waitFor(() => expect(slow.count()).toBeGreaterThan(2), { timeout: 10_000 });

      // B's breaker is closed (it never saw the outage); A holds the journal.
      handleB = hybridStorage(redis.url, {}, { reuse: handleP });
      const B = handleB.storage;
      await B.kv.set('k30', 'fresh');
      expect(ctl(B).stats().breakers.redis).toBe('closed');
      expect(ctl(B).stats().routing['cache:redis:primary']).toBeGreaterThan(0);

      await replay;
      await vi.waitFor(
        async () => {
          await ctl(A).reconcile();
          await ctl(B).reconcile();
          const left = await ctl(B).drivers.postgresql!.queues.stats(JOURNAL);
          expect(left.depth + left.inFlight).toBe(0);
        },
        { timeout: 20_000 },
      );
      expect(await B.kv.get('k30')).toBe('fresh');
      expect(await A.kv.get('k30')).toBe('fresh');
      expect(await B.kv.get('k29')).toBe(29);
      expect(ctl(B).stats().ordered).toBe(1);
    } finally {
      await handleB?.storage.close();
      await handleA?.storage.close();
      await handleP.dispose();
    }
  });

  it("the first write of a new container lands after the dead container's journal, not under it", async () => {
    const handleP = await outageLeftBehind(20);
    let handleB: HybridHandle | undefined;
    try {
      handleB = hybridStorage(redis.url, {}, { reuse: handleP });
      const B = handleB.storage;
      await B.kv.set('k20', 'fresh'); // its first operation: its own replay starts alongside
      await vi.waitFor(
        async () => {
          await ctl(B).reconcile();
          const left = await ctl(B).drivers.postgresql!.queues.stats(JOURNAL);
          expect(left.depth + left.inFlight).toBe(0);
        },
        { timeout: 20_000 },
      );
      expect(await ctl(B).drivers.redis!.kv.get('k20')).toBe('fresh');
      expect(await B.kv.get('k19')).toBe(19);
    } finally {
      await handleB?.storage.close();
      await handleP.dispose();
    }
  });

  for (const fault of [
    { name: 'SHUTDOWN NOSAVE and a restart', inject: () => redis.shutdown(), heal: () => redis.start() },
    {
      name: 'CLIENT PAUSE 1500 ALL',
      inject: async () => void (await redis.cli('client', 'pause', '1500', 'ALL')),
      heal: async () => {},
    },
  ]) {
    it(`two containers writing in turn through ${fault.name}: every key ends on its last acknowledged value`, async () => {
      const handleA = hybridStorage(redis.url);
      const handleB = hybridStorage(redis.url, {}, { reuse: handleA });
      const [A, B] = [handleA.storage, handleB.storage];
      try {
        await Promise.all([A.kv.set('warm', 1), B.kv.set('warm', 2)]);
        await Promise.all([A.sessions.activeClusters(), B.sessions.activeClusters()]);
        const last = new Map<string, number>();
        let i = 0;
        let failures = 0;
        // One client, each write after the previous one's answer, alternating containers; a
        // write that fails is retried until acknowledged (what an agent does with a 503).
        const writeUntil = async (until: number) => {
          while (Date.now() < until) {
            const key = `k${i % 7}`;
            for (;;) {
              try {
                await (i % 2 === 0 ? A : B).kv.set(key, i);
                break;
              } catch {
                failures++;
                await sleep(20);
              }
            }
            last.set(key, i);
            i++;
          }
        };
        await writeUntil(Date.now() + 300);
        await fault.inject();
        await writeUntil(Date.now() + 1500);
        await fault.heal();
        await writeUntil(Date.now() + 2000);
        await vi.waitFor(
          async () => {
            await Promise.all([ctl(A).reconcile(), ctl(B).reconcile()]);
            expect(ctl(A).stats().breakers).toEqual({ redis: 'closed', postgresql: 'closed' });
            expect(ctl(B).stats().breakers).toEqual({ redis: 'closed', postgresql: 'closed' });
            const left = await ctl(A).drivers.postgresql!.queues.stats(JOURNAL);
            expect(left.depth + left.inFlight).toBe(0);
          },
          { timeout: 30_000 },
        );
        expect(ctl(A).stats().fallbackTriggers.redis ?? 0).toBeGreaterThan(0);
        const rk = ctl(A).drivers.redis!.kv;
        const ended = Object.fromEntries(
          await Promise.all([...last.keys()].map(async (k) => [k, await rk.get(k)])),
        );
        expect(ended).toEqual(Object.fromEntries(last));
        const ordered = ctl(A).stats().ordered + ctl(B).stats().ordered;
        console.log(
          `[hybrid] ${fault.name}: ${i} writes in turn, ${failures} retried, ${ordered} journaled behind waiting entries, every key on its last value`,
        );
      } finally {
        await handleB.storage.close();
        await handleA.dispose();
      }
    });
  }

  it('a fallback write whose journal entry cannot be written fails and leaves nothing on the fallback', async () => {
    const handle = hybridStorage(redis.url);
    const s = handle.storage;
    try {
      await s.kv.set('before', 1);
      await s.queues.send('jobs', { m: 0 });
      await s.sessions.activeClusters();
      await redis.shutdown();
      await s.kv.set('during', 1); // the breaker opens; PostgreSQL serves and journals
      const pq = ctl(s).drivers.postgresql!.queues;
      const realSend = pq.send.bind(pq);
      let refused = 0;
      pq.send = async (...args: Parameters<typeof pq.send>) => {
        if (args[0].startsWith(JOURNAL)) {
          refused++;
          throw new BackendUnavailableError('postgresql', 'journal refused (test)', { retryable: true });
        }
        return realSend(...args);
      };
      await expect(s.kv.set('orphan', 'x')).rejects.toBeInstanceOf(BackendUnavailableError);
      expect(refused).toBeGreaterThan(1); // retried before giving up
      expect(await ctl(s).drivers.postgresql!.kv.get('orphan')).toBeUndefined();
      await expect(s.queues.send('jobs', { m: 1 })).rejects.toBeInstanceOf(BackendUnavailableError);
      expect((await ctl(s).drivers.postgresql!.queues.stats('jobs')).depth).toBe(0);
      pq.send = realSend;
      await redis.start();
      // The refused appends counted as a PostgreSQL outage too: both breakers close once each
      // journal is known drained.
      await vi.waitFor(
        () => {
          expect(ctl(s).stats().breakers).toEqual({ redis: 'closed', postgresql: 'closed' });
        },
        { timeout: 20_000 },
      );
      await s.queues.send('jobs', { m: 2 });
      expect(await s.kv.get('during')).toBe(1);
      expect(await s.kv.get('orphan')).toBeUndefined();
      const got: unknown[] = [];
      for (let batch = await s.queues.receive('jobs', { max: 10 }); batch.length > 0; ) {
        for (const m of batch) {
          got.push(m.payload);
          await s.queues.ack('jobs', m.id, m.receipt);
        }
        batch = await s.queues.receive('jobs', { max: 10 });
      }
      expect(got).toEqual([{ m: 0 }, { m: 2 }]);
    } finally {
      await handle.dispose();
    }
  });

  it('a reconciler that lost its lock between the two writes of one entry does not make the second', async () => {
    const lock = { journalLockMs: 1500, probeIntervalMs: 60_000, routing: { sessions: 'redis' as const } };
    const handleP = hybridStorage(redis.url, lock);
    const P = handleP.storage;
    let handleA: HybridHandle | undefined;
    let handleB: HybridHandle | undefined;
    try {
      await P.sessions.activeClusters();
      await P.kv.set('warm', 1);
      await redis.shutdown();
      const session = await P.sessions.create({ clusterId: 'c1' }); // on PostgreSQL, journaled
      await P.close();
      await redis.start();

      handleA = hybridStorage(redis.url, lock, { reuse: handleP });
      const A = handleA.storage;
      const rs = ctl(A).drivers.redis!.sessions;
      const realKeepAlive = rs.keepAlive.bind(rs);
      let stalled: Promise<void> | undefined;
      const creates: string[] = [];
      const realCreate = rs.create.bind(rs);
      rs.create = async (...args: Parameters<typeof rs.create>) => {
        creates.push(args[0].sessionId ?? '');
        return realCreate(...args);
      };
      // A's replay stalls inside the entry (a container frozen between its two writes).
      rs.keepAlive = async (...args: Parameters<typeof rs.keepAlive>) => {
        stalled = sleep(3000);
        await stalled;
        return realKeepAlive(...args);
      };
      const aRun = ctl(A).reconcile();
      await vi.waitFor(() => expect(stalled).toBeDefined(), { timeout: 10_000 });
      await sleep(2000); // A's lock and its entry's lease end

      handleB = hybridStorage(redis.url, lock, { reuse: handleP });
      const B = handleB.storage;
      expect(await ctl(B).reconcile()).toBeGreaterThan(0);
      expect((await B.sessions.get(session.sessionId))?.clusterId).toBe('c1');
      expect(await B.sessions.end(session.sessionId)).toBe(true);
      await aRun;
      await sleep(300);
      expect(await B.sessions.get(session.sessionId)).toBeUndefined();
      expect(creates).toEqual([]); // A's create never ran
    } finally {
      await handleB?.storage.close();
      await handleA?.storage.close();
      await handleP.dispose();
    }
  });
});
