/**
 * The hybrid backend: a routing table over the other backends' drivers (composition, like
 * unstorage's overlay driver), not a third implementation. Each data type goes to its
 * backend (`hybrid.routing`); with `hybrid.fallback.enabled` a per-backend circuit breaker
 * sends a failing backend's data types to the next backend in `fallback.order`, journals what
 * it wrote there (durably, in that backend) and replays it when the primary answers its health
 * probe again; with `hybrid.sync.enabled` / `migration.dualWrite` writes are mirrored to the
 * other backend. Sessions on PostgreSQL get a read-through Redis cache for `isClusterActive`.
 *
 * This file composes the parts: context.ts (what they share), breaker.ts, router.ts, writer.ts,
 * journals.ts, mirror.ts, reconciler.ts (with journal-lock.ts), cluster-cache.ts and stores/.
 * Semantics (what reads see during an outage, ordering, duplicates) are in docs/hybrid.md.
 */
import { BackendUnavailableError } from '../../errors.js';
import type { Driver } from '../driver.js';
import type { HealthReport, SweepReport } from '../types.js';
import { createBreaker } from './breaker.js';
import { createClusterCache } from './cluster-cache.js';
import { createContext } from './context.js';
import { hybridHealth, journalDepth } from './health.js';
import { createJournals } from './journals.js';
import { createMirror } from './mirror.js';
import { createReconciler } from './reconciler.js';
import { createRouter } from './router.js';
import type { BackendName, HybridSettings } from './settings.js';
import type { HybridStats } from './stats.js';
import { hybridAudit } from './stores/audit.js';
import { hybridConnections } from './stores/connections.js';
import { hybridConsumers } from './stores/consumers.js';
import type { StoreDeps } from './stores/deps.js';
import { hybridEvents } from './stores/events.js';
import { hybridKv } from './stores/kv.js';
import { hybridQueues } from './stores/queues.js';
import { hybridSessions } from './stores/sessions.js';
import { hybridTokens } from './stores/tokens.js';
import { createWriter } from './writer.js';

export { emfSink } from './metrics.js';
export type { BackendName, DataType, HybridMetric, HybridOptions, HybridSettings } from './settings.js';
export { backendsInUse, hybridSettings } from './settings.js';
export type { HybridStats } from './stats.js';

export interface HybridControl {
  readonly settings: HybridSettings;
  stats(): HybridStats;
  /** Replays every journal whose target answers; answers how many entries were applied. */
  reconcile(): Promise<number>;
  /** Waits for asynchronous dual-writes still running. */
  flush(): Promise<void>;
  /**
   * Entries waiting for replay in each backend's journal (leased and dead ones included), also
   * reported as `JournalDepth`; a backend whose journal cannot be read now is left out.
   */
  journalDepth(): Promise<Partial<Record<BackendName, number>>>;
  health(): Promise<HealthReport>;
  /** The composed drivers (for tests and tools). */
  readonly drivers: Partial<Record<BackendName, Driver>>;
}

export interface HybridDriver extends Driver {
  readonly control: HybridControl;
}

export function createHybridDriver(
  settings: HybridSettings,
  factories: Record<BackendName, () => Driver>,
  used: Set<BackendName>,
): HybridDriver {
  const ctx = createContext(settings, factories, used);
  const { members, stats } = ctx;
  const replaying = ctx.fallbackOn || settings.sync.enabled;
  // The parts call one another in a cycle (a probe replays, a replay invalidates the cache, the
  // cache reads through the router, the router's first use asks for a replay): the arrows
  // below reach parts made after them, and run only once everything is built.
  const breaker = createBreaker(ctx, {
    replay: (m) => reconciler.recovery.replay(m),
    closed: (m) => reconciler.recovery.closed(m),
  });
  const router = createRouter(ctx, breaker, () => {
    // A container that starts after another one died mid-outage replays what that one journaled.
    if (replaying) reconciler.schedule(0);
  });
  const cache = createClusterCache(ctx, { router, breaker });
  const reconciler = createReconciler(ctx, { sessionChanged: cache.invalidate });
  const scheduleReconcile = reconciler.schedule;
  const journals = createJournals(ctx);
  const mirror = createMirror(ctx, { breaker, journals, scheduleReconcile });
  const write = createWriter(ctx, { router, breaker, journals, mirror, scheduleReconcile });
  const stores: StoreDeps = { ctx, router, write };

  const health = () => hybridHealth(ctx);
  const control: HybridControl = {
    settings,
    stats() {
      const lookups = stats.cache.hits + stats.cache.misses;
      stats.cache.hitRatio = lookups === 0 ? 0 : stats.cache.hits / lookups;
      for (const m of members.values()) stats.breakers[m.name] = m.state;
      return structuredClone(stats);
    },
    reconcile: reconciler.reconcile,
    flush: mirror.flush,
    journalDepth: () => journalDepth(ctx),
    health,
    drivers: Object.fromEntries([...members].map(([name, m]) => [name, m.driver])),
  };

  return {
    name: 'hybrid',
    kv: hybridKv(stores),
    sessions: hybridSessions(stores, cache),
    queues: hybridQueues(stores, breaker),
    events: hybridEvents(stores),
    tokens: hybridTokens(stores),
    audit: hybridAudit(stores),
    connections: hybridConnections(stores),
    consumers: hybridConsumers(stores),
    control,
    pools() {
      const all: ReturnType<NonNullable<Driver['pools']>> = {};
      for (const m of members.values()) Object.assign(all, m.driver.pools?.());
      return all;
    },
    async ping() {
      const report = await health();
      if (report.status === 'down') {
        throw new BackendUnavailableError('hybrid', 'no backend serves every data type');
      }
    },
    async sweep(batchSize) {
      const totals: Omit<SweepReport, 'durationMs'> = {
        kv: 0,
        sessions: 0,
        queues: 0,
        events: 0,
        tokens: 0,
        audit: 0,
        connections: 0,
      };
      for (const m of members.values()) {
        if (m.state !== 'closed') continue;
        const report = await m.driver.sweep(batchSize);
        for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += report[key];
      }
      // The scheduled sweep is also the reconciler of last resort (journals left by dead containers).
      if (replaying) await reconciler.reconcile().catch(() => 0);
      return totals;
    },
    async close() {
      ctx.lifecycle.closed = true;
      breaker.stop();
      // In-flight replays stop at their next entry and release their journal locks.
      await Promise.allSettled([reconciler.stop(), ...mirror.running()]);
      await Promise.all([...members.values()].map((m) => m.driver.close()));
    },
  };
}
