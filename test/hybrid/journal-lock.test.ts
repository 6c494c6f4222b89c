/**
 * The journal-lock protocol (lib/storage/hybrid/journal-lock.ts) on its own, against the shared
 * Redis and PostgreSQL (the lock is a kv key in the journal's backend: its `nx`/`xx` sets and
 * TTLs are what the claims are about), and two reconcilers (reconciler.ts) draining one journal
 * in PostgreSQL into Redis.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { resolveConfig, type StorageConfig } from '../../lib/config/index.js';
import type { Driver, KvDriver } from '../../lib/storage/driver.js';
import { createContext } from '../../lib/storage/hybrid/context.js';
import { JOURNAL_QUEUE, type JournalRecord } from '../../lib/storage/hybrid/journal.js';
import {
  JOURNAL_LOCK,
  JournalBusy,
  JournalLock,
  type OrphanedLocks,
} from '../../lib/storage/hybrid/journal-lock.js';
import { createReconciler } from '../../lib/storage/hybrid/reconciler.js';
import { hybridSettings } from '../../lib/storage/hybrid/settings.js';
import { createPostgresDriver } from '../../lib/storage/postgresql/index.js';
import { quoteIdent } from '../../lib/storage/postgresql/sql.js';
import { createRedisDriver } from '../../lib/storage/redis/index.js';
import { testDatabaseUrl } from '../support/backends.js';
import { hybridUnavailable, withAdmin } from './support.js';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const missing = await hybridUnavailable();

const id = randomBytes(4).toString('hex');
const config: StorageConfig = resolveConfig({
  backend: 'hybrid',
  keyPrefix: `kst:jl:${id}:`,
  redis: { url: REDIS_URL, connectTimeout: 1, maxRetriesPerRequest: 1 },
  postgresql: { driver: 'pg', url: testDatabaseUrl(), schema: `kst_jl_${id}`, migrate: true, listen: false },
});
const newRedis = () => createRedisDriver(config);
const newPostgres = () => createPostgresDriver(config);

const LOCK_MS = 1000;
const MARGIN_MS = 100;

function lockOn(
  kv: KvDriver,
  orphans: OrphanedLocks = new Map(),
  lockMs = LOCK_MS,
  marginMs = MARGIN_MS,
): JournalLock {
  return new JournalLock(kv, {
    backend: 'test',
    lockMs,
    marginMs,
    deadlineMs: () => 5000,
    orphans,
  });
}

describe.skipIf(missing !== undefined)('hybrid journal lock', () => {
  const drivers: Driver[] = [];
  const open = (make: () => Driver) => {
    const driver = make();
    drivers.push(driver);
    return driver;
  };

  afterAll(async () => {
    await Promise.all(drivers.map((driver) => driver.close().catch(() => {})));
    await withAdmin((sql) =>
      sql.query(`DROP SCHEMA IF EXISTS ${quoteIdent(config.postgresql.schema)} CASCADE`),
    );
  });

  describe.each([
    ['redis', newRedis],
    ['postgresql', newPostgres],
  ] as const)('on %s', (_backend, make) => {
    let kv: KvDriver;
    beforeAll(() => {
      kv = open(make).kv;
    });
    const clear = () => kv.delete(JOURNAL_LOCK);

    it('one holder at a time: a second acquisition is refused until the first releases', async () => {
      await clear();
      const first = lockOn(kv);
      const second = lockOn(kv);
      await first.acquire();
      expect(await kv.get(JOURNAL_LOCK)).toBe(first.token);
      await expect(second.acquire()).rejects.toBeInstanceOf(JournalBusy);
      await first.check(true);
      await first.release();
      expect(await kv.get(JOURNAL_LOCK)).toBeUndefined();
      await second.acquire();
      expect(await kv.get(JOURNAL_LOCK)).toBe(second.token);
      await second.release();
    });

    it('a holder renews its lock once less than half of it is left', async () => {
      await clear();
      const lock = lockOn(kv, new Map(), 4000);
      await lock.acquire();
      await vi.waitFor(
        async () => {
          const left = await kv.ttlMs(JOURNAL_LOCK);
          expect(left).toBeLessThan(1900);
        },
        { timeout: 5000, interval: 100 },
      );
      await lock.check(true);
      expect(await kv.ttlMs(JOURNAL_LOCK)).toBeGreaterThan(2000);
      expect(await kv.get(JOURNAL_LOCK)).toBe(lock.token);
      await lock.release();
    });

    it('a holder whose lock is another token now has lost it: its check throws and its release leaves the other', async () => {
      await clear();
      const lost = lockOn(kv);
      await lost.acquire();
      await kv.set(JOURNAL_LOCK, JSON.stringify('someone-else'), { ttlMs: 10_000 }, undefined);
      await expect(lost.check(true)).rejects.toBeInstanceOf(JournalBusy);
      // Not renewed back either: the check is what a holder runs before every entry.
      await expect(lost.check()).rejects.toBeInstanceOf(JournalBusy);
      await lost.release();
      expect(await kv.get(JOURNAL_LOCK)).toBe('someone-else');
      await clear();
    });

    it('a release deletes its lock only while more than the margin is left (else another may take it between the read and the delete)', async () => {
      await clear();
      // A margin longer than the lock: whatever is left, the release must leave the key alone.
      const closeToExpiry = lockOn(kv, new Map(), 20_000, 30_000);
      await closeToExpiry.acquire();
      await closeToExpiry.release();
      expect(await kv.get(JOURNAL_LOCK)).toBe(closeToExpiry.token);
      await clear();
      const plenty = lockOn(kv, new Map(), 20_000, 1_000);
      await plenty.acquire();
      await plenty.release();
      expect(await kv.get(JOURNAL_LOCK)).toBeUndefined();
    });

    it('an expired lock is taken by the next reconciler; the one that held it finds out at its next check', async () => {
      await clear();
      const stale = lockOn(kv);
      await stale.acquire();
      const next = lockOn(kv);
      await expect(next.acquire()).rejects.toBeInstanceOf(JournalBusy);
      // The holder stalls past its expiry (no check, so no renewal).
      await vi.waitFor(() => next.acquire(), { timeout: 5000, interval: 100 });
      expect(await kv.get(JOURNAL_LOCK)).toBe(next.token);
      await expect(stale.check()).rejects.toBeInstanceOf(JournalBusy);
      await stale.release();
      expect(await kv.get(JOURNAL_LOCK)).toBe(next.token);
      await next.release();
    });

    it('a lock left by this process (its release failed) is taken back by its next pass, not by another process', async () => {
      await clear();
      const orphans: OrphanedLocks = new Map();
      const left = lockOn(kv, orphans, 10_000);
      await left.acquire();
      // What a release that could not reach the backend records.
      orphans.set('test', left.token);
      await expect(lockOn(kv, new Map(), 10_000).acquire()).rejects.toBeInstanceOf(JournalBusy);
      const again = lockOn(kv, orphans, 10_000);
      await again.acquire();
      expect(await kv.get(JOURNAL_LOCK)).toBe(again.token);
      expect(orphans.has('test')).toBe(false);
      await again.release();
    });
  });

  describe('two reconcilers draining one journal', () => {
    const ENTRIES = 12;
    const settings = hybridSettings(config, {
      journalLockMs: LOCK_MS,
      probeIntervalMs: 60_000,
      fallback: { enabled: true, order: ['redis', 'postgresql'] },
    });

    /** A process's reconciler over its own drivers; `writes` records each kv write it makes on Redis. */
    function reconcilerProcess(wrapQueues?: (driver: Driver) => void) {
      const writes: string[] = [];
      const ctx = createContext(
        settings,
        {
          redis: () => {
            const driver = open(newRedis);
            const set = driver.kv.set.bind(driver.kv);
            driver.kv.set = async (key, json, expiry, condition) => {
              writes.push(key);
              return set(key, json, expiry, condition);
            };
            return driver;
          },
          postgresql: () => {
            const driver = open(newPostgres);
            wrapQueues?.(driver);
            return driver;
          },
        },
        new Set(['redis', 'postgresql']),
      );
      const reconciler = createReconciler(ctx, { sessionChanged: async () => {} });
      const close = () => {
        ctx.lifecycle.closed = true;
        return reconciler.stop();
      };
      return { reconciler, writes, close };
    }

    it('one that lost the lock while stalled writes nothing more; every entry is applied exactly once', async () => {
      const journal = open(newPostgres).queues;
      const keys = Array.from({ length: ENTRIES }, (_, index) => `jl-${id}-${index}`);
      for (const key of keys) {
        const record: JournalRecord = {
          v: 1,
          target: 'redis',
          kind: 'fallback',
          entry: { t: 'kv', key, json: '"v"', atMs: null },
        };
        await journal.send(JOURNAL_QUEUE, JSON.stringify(record), 0, undefined);
      }
      // A stalls right after it leased its first batch: its lock expires meanwhile.
      let received: () => void = () => {};
      const stalled = new Promise<void>((resolve) => {
        received = resolve;
      });
      let resume: () => void = () => {};
      const resumed = new Promise<void>((resolve) => {
        resume = resolve;
      });
      const a = reconcilerProcess((driver) => {
        const receive = driver.queues.receive.bind(driver.queues);
        let first = true;
        driver.queues.receive = async (queue, max, visibilityMs, waitMs) => {
          const batch = await receive(queue, max, visibilityMs, waitMs);
          if (queue === JOURNAL_QUEUE && first && batch.length > 0) {
            first = false;
            received();
            await resumed;
          }
          return batch;
        };
      });
      const b = reconcilerProcess();
      try {
        const passA = a.reconciler.reconcile();
        await stalled;
        // B waits out A's lock, then A's leases, then drains everything.
        await vi.waitFor(
          async () => {
            await b.reconciler.reconcile();
            const left = await journal.stats(JOURNAL_QUEUE);
            expect(left.depth + left.inFlight).toBe(0);
          },
          { timeout: 20_000, interval: 200 },
        );
        resume();
        await passA;
        expect(a.writes.filter((key) => keys.includes(key))).toEqual([]);
        expect([...b.writes].filter((key) => keys.includes(key)).sort()).toEqual([...keys].sort());
      } finally {
        resume();
        await a.close();
        await b.close();
      }
    });
  });
});
