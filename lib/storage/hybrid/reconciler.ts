/**
 * Reconciliation: replays the journals (what fallbacks took during an outage, mirrors that
 * failed, direct writes journaled behind waiting entries) into their target backend. Passes are
 * asked for by the breaker's probe, by writes and by the scheduled sweep; one pass into one
 * target (replay.ts) drains every other backend's journal under that journal's lock.
 */
import type { Recovery } from './breaker.js';
import type { HybridContext } from './context.js';
import type { OrphanedLocks } from './journal-lock.js';
import { type ReplayState, reconcileInto, runCleanups } from './replay.js';
import type { BackendName } from './settings.js';

export interface Reconciler {
  /** Replays every journal whose target answers; answers how many entries were applied. */
  reconcile(): Promise<number>;
  /**
   * Asks for a reconcile in `delayMs`. Every request gets a pass that starts no earlier than it
   * asked: a shorter delay is not held up by a longer one already pending (a 1 s retry behind a
   * 60 s sync interval), and the longer one still runs after the shorter one (entries requeued
   * with a delay are visible only then). Requests are kept per 100 ms.
   */
  schedule(delayMs: number): void;
  /** What a recovering breaker runs around its close. */
  readonly recovery: Recovery;
  /** Stops scheduling; waits for passes still running (they stop at their next entry and release their locks). */
  stop(): Promise<void>;
}

export function createReconciler(
  ctx: HybridContext,
  deps: { sessionChanged: (clusterId: string) => Promise<void> },
): Reconciler {
  const { settings, lifecycle } = ctx;
  let reconciling: Promise<number> | undefined;
  /** Replays run by probes (awaited by `stop`, so their locks are released). */
  const probing = new Set<Promise<unknown>>();
  let followUp: NodeJS.Timeout | undefined;
  let followUpAt = 0;
  /** When reconciles were asked for (see `schedule`). */
  const wanted = new Set<number>();
  const cleanups = new Map<BackendName, (() => Promise<void>)[]>();
  const orphanedLocks: OrphanedLocks = new Map();
  const state: ReplayState = {
    ctx,
    lockMarginMs: Math.min(settings.operationTimeoutMs * 10, settings.journalLockMs / 4),
    orphanedLocks,
    batchSizes: new Map(),
    cleanupsOf(target) {
      const list = cleanups.get(target) ?? [];
      cleanups.set(target, list);
      return list;
    },
    sessionChanged: deps.sessionChanged,
    schedule,
  };

  function schedule(delayMs: number): void {
    if (lifecycle.closed) return;
    wanted.add(Math.ceil((Date.now() + delayMs) / 100) * 100);
    armFollowUp();
  }

  function armFollowUp(): void {
    if (lifecycle.closed || wanted.size === 0) return;
    const next = Math.min(...wanted);
    if (followUp) {
      if (followUpAt <= next) return;
      clearTimeout(followUp);
    }
    followUpAt = next;
    followUp = setTimeout(
      () => {
        followUp = undefined;
        const now = Date.now();
        for (const at of wanted) if (at <= now) wanted.delete(at);
        void reconcile()
          .catch(() => 0)
          .finally(armFollowUp);
      },
      Math.max(0, next - Date.now()),
    );
    followUp.unref();
  }

  function reconcile(): Promise<number> {
    if (reconciling) return reconciling;
    reconciling = (async () => {
      let applied = 0;
      for (const target of ctx.members.values()) {
        if (target.state === 'closed') applied += await reconcileInto(state, target).catch(() => 0);
      }
      return applied;
    })().finally(() => {
      reconciling = undefined;
    });
    return reconciling;
  }

  const recovery: Recovery = {
    async replay(m) {
      // A source journal that cannot be locked or read throws: the breaker stays open until
      // every journal is known drained.
      const replay = reconcileInto(state, m);
      probing.add(replay);
      try {
        await replay;
      } finally {
        probing.delete(replay);
      }
    },
    async closed(m) {
      await runCleanups(state, m);
      // Writes that reached the fallback while this replay ran are caught by a second pass.
      schedule(settings.probeIntervalMs);
    },
  };

  return {
    reconcile,
    schedule,
    recovery,
    async stop() {
      if (followUp) clearTimeout(followUp);
      await Promise.allSettled([reconciling, ...probing]);
    },
  };
}
