/**
 * Fault injection on the hybrid backend with the seed's routing (queues and cache on Redis;
 * sessions, tokens and audit on PostgreSQL) and fallback on: a stream of writes and enqueues
 * while a PRIVATE Redis is shut down, hangs (DEBUG SLEEP) or pauses clients (CLIENT PAUSE), and
 * while this test's PostgreSQL connections are killed. Every acknowledged write must be
 * readable afterwards and every acknowledged send received at least once.
 *
 * Failover times are measured and printed (`[hybrid] failover …`), asserted only against a
 * generous bound: the machine is shared and timing is not what these tests prove.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BackendUnavailableError } from '../../lib/errors.js';
import { hashToken } from '../../lib/storage/facade.js';
import { hybridControl } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { sleep } from '../support/helpers.js';
import {
  type HybridHandle,
  hybridStorage,
  hybridUnavailable,
  killConnections,
  PrivateRedis,
} from './support.js';

const unavailable = await hybridUnavailable();
const GENEROUS_MS = 5000;

interface Fault {
  name: string;
  /** Starts the fault; may return before it ends. */
  inject(redis: PrivateRedis, handle: HybridHandle): Promise<void>;
  /** Ends it (restart, or nothing when it ends by itself). */
  heal(redis: PrivateRedis): Promise<void>;
  /** How long the stream runs inside the fault. */
  outageMs: number;
}

interface StreamResult {
  keys: Map<string, number>;
  sent: Set<number>;
  received: Set<number>;
  failoverMs: number;
  maxOpMs: number;
  failed: number;
  /** The receipt of the message leased during the outage. */
  heldReceipt: string | undefined;
}

/** Writes and enqueues before, during and after `fault`, with a receiver running throughout. */
async function streamThrough(redis: PrivateRedis, handle: HybridHandle, fault: Fault): Promise<StreamResult> {
  const s = handle.storage;
  const queue = 'jobs';
  const keys = new Map<string, number>();
  const sent = new Set<number>();
  const received = new Set<number>();
  let failed = 0;
  let maxOpMs = 0;
  let receiving = true;
  // Paused during the outage, so what is enqueued then waits on the fallback until the
  // reconciler moves it (the receiver draining the fallback meanwhile would hide a lost move).
  let paused = false;
  const receiver = (async () => {
    while (receiving) {
      if (paused) {
        await sleep(10);
        continue;
      }
      try {
        const messages = await s.queues.receive(queue, { max: 10, visibilityTimeout: 2 });
        for (const m of messages) {
          received.add(m.payload as number);
          await s.queues.ack(queue, m.id, m.receipt).catch(() => {});
        }
        if (messages.length === 0) await sleep(10);
      } catch {
        await sleep(20);
      }
    }
  })();
  let i = 0;
  const step = async () => {
    const n = i++;
    const started = performance.now();
    try {
      await s.kv.set(`k:${n}`, n);
      keys.set(`k:${n}`, n);
    } catch {
      failed++;
    }
    try {
      await s.queues.send(queue, n);
      sent.add(n);
    } catch {
      failed++;
    }
    const took = performance.now() - started;
    maxOpMs = Math.max(maxOpMs, took);
    return took;
  };
  for (let k = 0; k < 100; k++) await step();
  paused = true;
  await fault.inject(redis, handle);
  // The first step after the fault began: how long the caller waited for an answer.
  const failoverMs = await step();
  const outageEnd = performance.now() + fault.outageMs;
  while (performance.now() < outageEnd) await step();
  // A lease taken during the outage (from the fallback), acked only after the recovery: the
  // receipt must take the ack back to the backend that issued it.
  const held = await s.queues.receive(queue, { max: 1, visibilityTimeout: 60 });
  for (const m of held) received.add(m.payload as number);
  await fault.heal(redis);
  for (let k = 0; k < 100; k++) await step();

  const control = hybridControl(s)!;
  await vi.waitFor(() => expect(control.stats().breakers.redis).toBe('closed'), { timeout: 20_000 });
  // Only now: while the breaker recovers, receives still go to the fallback and would drain it.
  paused = false;
  for (const m of held) await s.queues.ack(queue, m.id, m.receipt);
  await control.reconcile();
  // Whatever is left (leases the receiver lost when Redis died) comes back within its 2 s lease.
  await vi.waitFor(
    async () => {
      const stats = await s.queues.stats(queue);
      expect(stats.depth + stats.inFlight).toBe(0);
      const fallbackStats = await control.drivers.postgresql!.queues.stats(queue);
      expect(fallbackStats.depth + fallbackStats.inFlight).toBe(0);
    },
    { timeout: 20_000 },
  );
  receiving = false;
  await receiver;
  return { keys, sent, received, failoverMs, maxOpMs, failed, heldReceipt: held[0]?.receipt };
}

async function expectNothingLost(s: Storage, result: StreamResult, label: string): Promise<void> {
  const lostKeys: string[] = [];
  for (const [key, value] of result.keys) if ((await s.kv.get(key)) !== value) lostKeys.push(key);
  const lostMessages = [...result.sent].filter((n) => !result.received.has(n));
  const stats = hybridControl(s)!.stats();
  console.log(
    `[hybrid] ${label}: failover ${result.failoverMs.toFixed(0)} ms (first write+send after the fault), ` +
      `slowest step ${result.maxOpMs.toFixed(0)} ms; ${result.keys.size} writes and ${result.sent.size} sends acknowledged, ` +
      `${result.failed} refused; lost: ${lostKeys.length} writes, ${lostMessages.length} messages; ` +
      `fallback triggers ${JSON.stringify(stats.fallbackTriggers)}, reconciled ${stats.reconcile.applied}`,
  );
  expect(lostKeys).toEqual([]);
  expect(lostMessages).toEqual([]);
  expect(result.keys.size).toBeGreaterThan(200);
  expect(result.failoverMs).toBeLessThan(GENEROUS_MS);
}

describe.skipIf(unavailable !== undefined)('hybrid: faults on a private Redis', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const faults: Fault[] = [
    {
      name: 'redis-cli shutdown nosave, then restart on the same port and dir',
      inject: (r) => r.shutdown(),
      heal: (r) => r.start(),
      outageMs: 1500,
    },
    {
      name: 'DEBUG SLEEP 2 (the server hangs)',
      async inject(r) {
        spawn('redis-cli', ['-p', String(r.port), 'debug', 'sleep', '2'], { stdio: 'ignore' });
        await sleep(50);
      },
      heal: async () => {},
      outageMs: 1500,
    },
    {
      name: 'CLIENT PAUSE 2000 ALL (every client waits)',
      async inject(r) {
        await r.cli('client', 'pause', '2000', 'all');
      },
      heal: async () => {},
      outageMs: 1500,
    },
  ];

  for (const fault of faults) {
    it(`${fault.name}: 0 acknowledged writes lost, 0 messages lost`, { timeout: 90_000 }, async () => {
      const handle = hybridStorage(redis.url);
      try {
        const result = await streamThrough(redis, handle, fault);
        await expectNothingLost(handle.storage, result, fault.name);
        // Redis was certainly down when the lease was taken: it came from PostgreSQL.
        if (fault.name.includes('shutdown')) expect(result.heldReceipt).toMatch(/^p~/);
        expect(hybridControl(handle.storage)!.stats().fallbackTriggers.redis).toBeGreaterThanOrEqual(1);
        expect((await handle.storage.health()).status).toBe('ok');
      } finally {
        await handle.dispose();
      }
    });
  }

  it('health() reports each backend: degraded while Redis is down and PostgreSQL serves, ok after', {
    timeout: 30_000,
  }, async () => {
    const handle = hybridStorage(redis.url);
    try {
      expect(await handle.storage.health()).toMatchObject({
        status: 'ok',
        backend: 'hybrid',
        checks: { redis: { ok: true }, postgresql: { ok: true } },
      });
      await redis.shutdown();
      const report = await handle.storage.health();
      expect(report).toMatchObject({
        status: 'degraded',
        checks: { redis: { ok: false }, postgresql: { ok: true } },
      });
      expect(report.checks.redis!.error).toEqual(expect.any(String));
    } finally {
      await redis.start();
      await handle.dispose();
    }
  });

  it('without fallback, a Redis outage is an error for its data types, and health() is down', {
    timeout: 30_000,
  }, async () => {
    const handle = hybridStorage(redis.url, { fallback: { enabled: false } });
    try {
      await handle.storage.kv.set('before', 1);
      await redis.shutdown();
      await expect(handle.storage.kv.set('during', 1)).rejects.toMatchObject({ code: 'unavailable' });
      expect((await handle.storage.health()).status).toBe('down');
    } finally {
      await redis.start();
      await handle.dispose();
    }
  });
});

describe.skipIf(unavailable !== undefined)('hybrid: the journal outlives the container that wrote it', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('a container that dies mid-outage leaves its journal in PostgreSQL; the next container replays it into Redis', {
    timeout: 60_000,
  }, async () => {
    const first = hybridStorage(redis.url);
    const queue = 'jobs';
    await first.storage.kv.set('before', 'old');
    await redis.shutdown();
    // Served by PostgreSQL and journaled there; this container then goes away before any recovery.
    await first.storage.kv.set('before', 'new');
    await first.storage.kv.set('during', 1);
    await first.storage.queues.send(queue, 'enqueued during the outage');
    await first.storage.close();
    await redis.start();

    // Another container: same prefix and schema, nothing in its memory about the outage.
    const { createStorage } = await import('../../lib/storage/index.js');
    const url = new URL(process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test');
    const second = createStorage({
      backend: 'hybrid',
      keyPrefix: first.keyPrefix,
      redis: { url: redis.url },
      postgresql: { driver: 'pg', url: url.toString(), schema: first.schema },
    });
    try {
      // Its first use schedules a replay of whatever journals it finds.
      await vi.waitFor(
        async () => {
          expect(await second.kv.get('before')).toBe('new');
          expect(await second.kv.get('during')).toBe(1);
        },
        { timeout: 15_000 },
      );
      const redisDriver = hybridControl(second)!.drivers.redis!;
      expect(await redisDriver.kv.get('during')).toBe(1);
      await vi.waitFor(
        async () => {
          const [message] = await second.queues.receive(queue);
          expect(message?.payload).toBe('enqueued during the outage');
          await second.queues.ack(queue, message!.id, message!.receipt);
        },
        { timeout: 15_000 },
      );
    } finally {
      await second.close();
      await first.dispose();
    }
  });
});

describe.skipIf(unavailable !== undefined)('hybrid: one reconciler per journal', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('a breaker stays open while another container holds the journal, and closes after its own pass', {
    timeout: 60_000,
  }, async () => {
    const handle = hybridStorage(redis.url);
    const s = handle.storage;
    const control = hybridControl(s)!;
    const pg = control.drivers.postgresql!;
    try {
      await s.kv.set('warm', 0);
      // This container's first-use pass is over before "another container" takes the lock (a
      // pass of its own holding it then would not be another container's).
      await sleep(50);
      await control.reconcile();
      await redis.shutdown();
      await s.kv.set('k', 'during');
      // "Another container" is draining PostgreSQL's journal.
      await pg.kv.set(
        '__kst_hybrid:journal-lock',
        JSON.stringify('someone-else'),
        { ttlMs: 60_000 },
        undefined,
      );
      await redis.start();
      await sleep(1500);
      expect(control.stats().breakers.redis).not.toBe('closed');
      expect(await control.drivers.redis!.kv.get('k')).toBeUndefined();
      await pg.kv.delete('__kst_hybrid:journal-lock');
      await vi.waitFor(() => expect(control.stats().breakers.redis).toBe('closed'), { timeout: 20_000 });
      expect(await control.drivers.redis!.kv.get('k')).toBe('during');
      // Not leaked: released once the follow-up passes are over.
      await vi.waitFor(async () => expect(await pg.kv.get('__kst_hybrid:journal-lock')).toBeUndefined(), {
        timeout: 10_000,
      });
    } finally {
      await handle.dispose();
    }
  });
});

describe.skipIf(unavailable !== undefined)('hybrid: a second outage', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('does not serve the first outage’s copies: a token revoked since fails, a key rewritten since is not stale', {
    timeout: 60_000,
  }, async () => {
    const handle = hybridStorage(redis.url, { routing: { authentication: 'redis' } });
    const s = handle.storage;
    const control = hybridControl(s)!;
    try {
      await s.kv.set('warm', 0);
      await redis.shutdown();
      const token = await s.tokens.issue({ identity: 'outage-1', scopes: ['kv:read'] });
      await s.kv.set('k', 'outage-1');
      await redis.start();
      await vi.waitFor(() => expect(control.stats().breakers.redis).toBe('closed'), { timeout: 20_000 });
      expect((await control.drivers.redis!.tokens.findByHash(hashToken(token.token)))?.id).toBe(token.id);
      expect(await s.kv.get('k')).toBe('outage-1');
      await s.tokens.revoke(token.id);
      await s.kv.set('k', 'after');

      await redis.shutdown();
      // The fallback no longer holds it: unknown there is an outage (503), not a valid token.
      await expect(s.tokens.verify(token.token)).rejects.toBeInstanceOf(BackendUnavailableError);
      expect(await s.kv.get('k')).toBeUndefined();
      await redis.start();
      await vi.waitFor(() => expect(control.stats().breakers.redis).toBe('closed'), { timeout: 20_000 });
      expect(await s.kv.get('k')).toBe('after');
      expect(await s.tokens.verify(token.token)).toBeUndefined();
    } finally {
      await handle.dispose();
    }
  });
});

describe.skipIf(unavailable !== undefined)('hybrid: PostgreSQL connections killed mid-stream', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('pg_terminate_backend on this storage’s connections: sessions, tokens and audit entries all reach PostgreSQL', {
    timeout: 90_000,
  }, async () => {
    const handle = hybridStorage(redis.url);
    const s = handle.storage;
    const control = hybridControl(s)!;
    const sessions = new Map<string, string>();
    const tokens = new Map<string, string>();
    const actions = new Set<string>();
    let killed = 0;
    let failed = 0;
    try {
      for (let n = 0; n < 150; n++) {
        if (n === 50 || n === 75 || n === 100) killed += await killConnections(handle.applicationName);
        try {
          const session = await s.sessions.create({ clusterId: `c${n % 7}`, correlationId: `r${n}` });
          sessions.set(session.sessionId, session.clusterId);
        } catch {
          failed++;
        }
        try {
          const token = await s.tokens.issue({ identity: `who${n}`, scopes: ['kv:read'] });
          tokens.set(token.token, token.id);
        } catch {
          failed++;
        }
        try {
          await s.audit.append({ identity: 'streamer', action: `stream.${n}` });
          actions.add(`stream.${n}`);
        } catch {
          failed++;
        }
      }
      await vi.waitFor(() => expect(control.stats().breakers.postgresql).toBe('closed'), { timeout: 20_000 });
      await control.reconcile();

      // Read from PostgreSQL itself, not through the hybrid: the data must be on the primary.
      const pg = control.drivers.postgresql!;
      const lostSessions = [];
      for (const [id, cluster] of sessions) {
        const found = await pg.sessions.get(id);
        if (found?.clusterId !== cluster) lostSessions.push(id);
      }
      const lostTokens = [];
      for (const [token, id] of tokens) if ((await s.tokens.verify(token))?.id !== id) lostTokens.push(id);
      const logged = new Set(
        (
          await pg.audit.query({
            identity: 'streamer',
            sinceMs: undefined,
            untilMs: undefined,
            limit: 1000,
            order: 'asc',
          })
        ).map((e) => e.action),
      );
      const lostAudit = [...actions].filter((a) => !logged.has(a));
      console.log(
        `[hybrid] pg_terminate_backend x3 (${killed} connections): ${sessions.size} sessions, ${tokens.size} tokens, ` +
          `${actions.size} audit entries acknowledged, ${failed} refused; fallback triggers ` +
          `${JSON.stringify(control.stats().fallbackTriggers)}, reconciled ${control.stats().reconcile.applied}; ` +
          `lost: ${lostSessions.length} sessions, ${lostTokens.length} tokens, ${lostAudit.length} audit entries`,
      );
      expect(killed).toBeGreaterThan(0);
      expect(lostSessions).toEqual([]);
      expect(lostTokens).toEqual([]);
      expect(lostAudit).toEqual([]);
      expect(sessions.size).toBeGreaterThan(100);
    } finally {
      await handle.dispose();
    }
  });
});
