/**
 * The edges of ordering and undo, each a scenario that once lost an acknowledged write: a replay
 * write still in flight when a direct write looked at the journal; a direct write while every
 * breaker was open; a reconciler frozen between its lock check and its receive; an `incr` taken
 * back by deleting the counter; the fallback copies of one target removed while the other target
 * was still recovering. Faults are injected into the composed drivers (`hybridControl().drivers`)
 * over a private redis-server and an own schema.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../lib/errors.js';
import { hybridControl } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { sleep } from '../support/helpers.js';
import { type HybridHandle, hybridStorage, hybridUnavailable, PrivateRedis } from './support.js';

const unavailable = await hybridUnavailable();

const ctl = (s: Storage) => hybridControl(s)!;
const JOURNAL = '__kst_hybrid_journal';
const LOCK = '__kst_hybrid:journal-lock';
const outage = (backend: string) =>
  new BackendUnavailableError(backend, 'injected outage', { retryable: true });

/** Makes the named methods of `target` fail with an outage while the answer's `on` is true. */
function breakable<T extends object>(target: T, names: (keyof T)[], backend: string): { on: boolean } {
  const flag = { on: true };
  for (const name of names) {
    const real = (target[name] as (...args: unknown[]) => Promise<unknown>).bind(target);
    (target as Record<keyof T, unknown>)[name] = async (...args: unknown[]) => {
      if (flag.on) throw outage(backend);
      return real(...args);
    };
  }
  return flag;
}

describe.skipIf(unavailable !== undefined)('hybrid: ordering and undo at the edges', () => {
  let redis: PrivateRedis;
  const handles: HybridHandle[] = [];
  const open = (...args: Parameters<typeof hybridStorage>) => {
    const handle = hybridStorage(...args);
    handles.push(handle);
    return handle;
  };
  beforeAll(async () => {
    redis = await PrivateRedis.start();
  });
  afterAll(async () => {
    for (const handle of handles.reverse()) await handle.storage.close().catch(() => {});
    for (const handle of handles) await handle.dispose();
    await redis?.stop();
  });

  /** P acknowledges `k` = v1 while its Redis kv fails (journaled in PostgreSQL), then dies. */
  async function journaledV1(): Promise<HybridHandle> {
    const handleP = open(redis.url, { probeIntervalMs: 60_000 });
    const P = handleP.storage;
    await P.sessions.activeClusters();
    await P.kv.set('k', 'v0');
    breakable(ctl(P).drivers.redis!.kv, ['set', 'get', 'getEntry'], 'redis');
    await P.kv.set('k', 'v1');
    await P.close();
    return handleP;
  }

  it('a direct write looks at the journal before it is made: a replay write in flight cannot land after it', async () => {
    const handleP = await journaledV1();
    const handleB = open(redis.url, { journalCheckMs: 0 }, { reuse: handleP });
    const B = handleB.storage;
    // B's own first-use replay finds the journal busy.
    await ctl(B).drivers.postgresql!.kv.set(LOCK, JSON.stringify('another'), { ttlMs: 60_000 }, undefined);
    await B.sessions.activeClusters();
    await sleep(300);
    await ctl(B).drivers.postgresql!.kv.delete(LOCK);

    const R = open(redis.url, {}, { reuse: handleP }).storage;
    const rk = ctl(R).drivers.redis!.kv;
    const realSet = rk.set.bind(rk);
    rk.set = async (...args: Parameters<typeof rk.set>) => {
      if (args[0] === 'k') await sleep(300); // R's replay write of v1 in transit
      return realSet(...args);
    };
    const bq = ctl(B).drivers.postgresql!.queues;
    const realStats = bq.stats.bind(bq);
    bq.stats = async (queue) => {
      if (queue === JOURNAL) await sleep(600); // B's look at PostgreSQL is slow
      return realStats(queue);
    };
    const replay = ctl(R).reconcile();
    await sleep(100);
    await B.kv.set('k', 'v2'); // long after v1 was acknowledged
    await replay;
    await ctl(R).reconcile();
    expect(await B.kv.get('k')).toBe('v2');
  });

  it('with every breaker open, a write the primary takes is still journaled behind waiting entries', async () => {
    const handleA = open(redis.url, { probeIntervalMs: 60_000 });
    const A = handleA.storage;
    await A.sessions.activeClusters();
    await A.kv.set('k', 'v0');
    const redisDown = breakable(ctl(A).drivers.redis!.kv, ['set', 'get', 'getEntry'], 'redis');
    await A.kv.set('k', 'v1'); // PostgreSQL serves, journaled
    const pq = ctl(A).drivers.postgresql!.queues;
    const realSend = pq.send.bind(pq);
    pq.send = async (...args: Parameters<typeof pq.send>) => {
      if (args[0].startsWith(JOURNAL)) throw outage('postgresql');
      return realSend(...args);
    };
    await expect(A.kv.set('other', 1)).rejects.toBeInstanceOf(BackendUnavailableError);
    pq.send = realSend;
    redisDown.on = false;
    expect(ctl(A).stats().breakers).toEqual({ redis: 'open', postgresql: 'open' });
    await A.kv.set('k', 'v2'); // every breaker open: the primary is tried, and answers
    expect(ctl(A).stats().ordered).toBe(1);
    const B = open(redis.url, {}, { reuse: handleA }).storage;
    await ctl(B).reconcile();
    await sleep(200);
    await ctl(B).reconcile();
    expect(await B.kv.get('k')).toBe('v2');
  });

  it('a reconciler frozen between its lock check and its receive: its lease ends before anyone replays what follows', async () => {
    const L = 2000;
    const handleP = await journaledV1();
    const A = open(redis.url, { journalLockMs: L }, { reuse: handleP }).storage;
    const aq = ctl(A).drivers.postgresql!.queues;
    const realReceive = aq.receive.bind(aq);
    let frozenAt = 0;
    aq.receive = async (...args: Parameters<typeof aq.receive>) => {
      if (args[0] !== JOURNAL) return realReceive(...args);
      frozenAt = Date.now();
      await sleep(0.45 * L); // frozen after the lock check
      const got = await realReceive(...args);
      await sleep(2 * L); // and with the entry in hand
      return got;
    };
    const replayA = ctl(A).reconcile();
    await sleep(0.3 * L);
    const B = open(redis.url, { journalLockMs: L }, { reuse: handleP }).storage;
    await B.kv.set('k', 'v2'); // the entry A holds counts as waiting: journaled behind it
    expect(ctl(B).stats().ordered).toBe(1);
    await sleep(frozenAt + 1.1 * L - Date.now()); // A's lock has expired
    await ctl(B).reconcile();
    await sleep(frozenAt + 1.6 * L - Date.now()); // A's lease has ended too
    await ctl(B).reconcile();
    await sleep(300);
    await ctl(B).reconcile();
    await replayA.catch(() => {});
    expect(await B.kv.get('k')).toBe('v2');
  });

  it('an incr whose journal entry cannot be written is counted back, not deleted: other increments stay', async () => {
    const handleA = open(redis.url, { probeIntervalMs: 60_000 });
    const A = handleA.storage;
    await A.sessions.activeClusters();
    await A.kv.set('warm', 1);
    breakable(ctl(A).drivers.redis!.kv, ['incr', 'set', 'get', 'getEntry'], 'redis');
    for (let i = 1; i <= 5; i++) expect(await A.kv.incr('counter')).toBe(i);
    const pq = ctl(A).drivers.postgresql!.queues;
    const realSend = pq.send.bind(pq);
    pq.send = async (...args: Parameters<typeof pq.send>) => {
      if (args[0].startsWith(JOURNAL)) throw outage('postgresql');
      return realSend(...args);
    };
    await expect(A.kv.incr('counter')).rejects.toBeInstanceOf(BackendUnavailableError);
    pq.send = realSend;
    expect(await ctl(A).drivers.postgresql!.kv.get('counter')).toBe(5);
  });

  it("the fallback copies of one target stay while it recovers, whatever the other target's replay does", async () => {
    const handleA = open(redis.url, { probeIntervalMs: 200 });
    const A = handleA.storage;
    await A.sessions.activeClusters();
    await A.kv.set('w', 1);
    const ps = ctl(A).drivers.postgresql!.sessions;
    const pgDown = breakable(ctl(A).drivers.postgresql!, ['ping'], 'postgresql');
    const createDown = breakable(ps, ['create'], 'postgresql');
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await A.sessions.create({ clusterId: 'c1', ttl: 600 })).sessionId);
    createDown.on = false;
    for (const name of ['keepAlive', 'create'] as const) {
      const real = (ps[name] as (...args: unknown[]) => Promise<unknown>).bind(ps);
      (ps as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
        await sleep(150); // PostgreSQL's replay runs slowly
        return real(...args);
      };
    }
    pgDown.on = false;
    await sleep(1200);
    expect(ctl(A).stats().breakers.postgresql).toBe('recovering');
    await ctl(A).reconcile(); // a replay into Redis (closed) finishes meanwhile
    expect(ctl(A).stats().breakers.postgresql).toBe('recovering');
    expect((await A.sessions.get(ids[0]!))?.sessionId).toBe(ids[0]);
  });

  it('a fallback send is journaled after it lands too: a replay that ran in between does not strand it', async () => {
    const A = open(redis.url, { probeIntervalMs: 60_000, operationTimeoutMs: 5000 }).storage;
    const handleA = handles[handles.length - 1]!;
    const B = open(redis.url, {}, { reuse: handleA }).storage;
    await Promise.all([A.sessions.activeClusters(), A.queues.stats('jobs'), B.sessions.activeClusters()]);
    const redisDown = breakable(ctl(A).drivers.redis!.queues, ['send'], 'redis'); // down for A only
    const pq = ctl(A).drivers.postgresql!.queues;
    const realSend = pq.send.bind(pq);
    let land!: () => void;
    const landed = new Promise<void>((resolve) => {
      land = resolve;
    });
    pq.send = async (...args: Parameters<typeof pq.send>) => {
      if (!args[0].startsWith(JOURNAL)) await landed; // the send lands only after B's replay
      return realSend(...args);
    };
    const sending = A.queues.send('jobs', { m: 1 });
    await sleep(300);
    await ctl(B).reconcile(); // moves the still empty queue, acks the first entry
    land();
    await sending;
    redisDown.on = false;
    for (let i = 0; i < 3; i++) await ctl(B).reconcile();
    const got = await B.queues.receive('jobs', { max: 10 });
    expect(got.map((m) => m.payload)).toEqual([{ m: 1 }]);
  });

  it('under dual-write a failed set or incr on the fallback is taken back without losing the mirror', async () => {
    const handleA = open(redis.url, { probeIntervalMs: 60_000, sync: { enabled: true, async: false } });
    const A = handleA.storage;
    await A.sessions.activeClusters();
    await A.kv.set('flag', 'on'); // mirrored to PostgreSQL
    for (let i = 0; i < 5; i++) await A.kv.incr('count');
    breakable(ctl(A).drivers.redis!.kv, ['set', 'incr', 'get', 'getEntry'], 'redis');
    const pq = ctl(A).drivers.postgresql!.queues;
    const realSend = pq.send.bind(pq);
    pq.send = async (...args: Parameters<typeof pq.send>) => {
      if (args[0].startsWith(JOURNAL)) throw outage('postgresql');
      return realSend(...args);
    };
    await expect(A.kv.set('flag', 'off')).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(A.kv.set('flag', 'on')).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(A.kv.incr('count')).rejects.toBeInstanceOf(BackendUnavailableError);
    pq.send = realSend;
    const mirror = ctl(A).drivers.postgresql!.kv;
    expect(await mirror.get('flag')).toBe('on');
    expect(await mirror.get('count')).toBe(5);
  });

  it('a journal whose look hangs is looked at once per probe interval; writes meanwhile are journaled behind it', async () => {
    const S = open(redis.url, { probeIntervalMs: 60_000 }).storage;
    await S.sessions.activeClusters();
    await S.kv.set('warm', 1);
    await sleep(300); // the first-use replay is done
    // Replays find the journal busy, so every `stats` of it below is a write's look.
    await ctl(S).drivers.postgresql!.kv.set(LOCK, JSON.stringify('another'), { ttlMs: 60_000 }, undefined);
    const pq = ctl(S).drivers.postgresql!.queues;
    const realStats = pq.stats.bind(pq);
    let looks = 0;
    pq.stats = async (queue) => {
      if (queue === JOURNAL) {
        looks++;
        await sleep(10_000); // the look hangs (PostgreSQL busy), appends still go through
      }
      return realStats(queue);
    };
    await sleep(300); // the clean answer cached before has expired
    for (let i = 0; i < 10; i++) await S.kv.set(`k${i}`, i);
    expect(looks).toBe(1);
    // Not knowing what the journal holds, each write was journaled behind it: no replay can undo it.
    expect(ctl(S).stats().ordered).toBe(10);
    expect(ctl(S).stats().breakers.postgresql).toBe('closed'); // a slow look is no outage
    for (let i = 0; i < 10; i++) expect(await S.kv.get(`k${i}`)).toBe(i);
  });
});
