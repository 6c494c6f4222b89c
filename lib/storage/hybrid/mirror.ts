/**
 * Dual-write (`hybrid.sync` / `migration.dualWrite`): what a write left on its primary is
 * applied to the other backend, at once or (`sync.async`) after the answer; a secondary write
 * that keeps failing is journaled on the primary and replayed by a later reconcile.
 */
import { BackendUnavailableError } from '../../errors.js';
import type { Breaker } from './breaker.js';
import { type HybridContext, isOutage, type Member, sleep, withDeadline } from './context.js';
import { applyEntry, itemOf, type JournalEntry } from './journal.js';
import type { Journals } from './journals.js';

export interface Mirror {
  /** Applies `entries` (what a write left on `from`) to `to`; asynchronous under `sync.async`. */
  mirror(from: Member, to: Member, entries: JournalEntry[]): Promise<void>;
  /** Waits for asynchronous mirrors still running. */
  flush(): Promise<void>;
  /** The asynchronous mirrors still running (awaited by `close`). */
  running(): Promise<void>[];
}

export function createMirror(
  ctx: HybridContext,
  deps: { breaker: Breaker; journals: Journals; scheduleReconcile: (delayMs: number) => void },
): Mirror {
  const { settings, stats, emit } = ctx;
  const { breaker, journals, scheduleReconcile } = deps;
  const pendingMirrors = new Set<Promise<void>>();
  /** The latest asynchronous mirror of each item (see `itemOf`). */
  const mirrorTails = new Map<string, Promise<void>>();

  /** Applies the entries to `to`, retried; after the last attempt they go to `from`'s journal. */
  async function apply(from: Member, to: Member, entries: JournalEntry[], ackedAt: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        // A secondary known to be down is not hammered: its share goes straight to the journal.
        if (to.state !== 'closed') throw new BackendUnavailableError(to.name, 'breaker open');
        for (const entry of entries) {
          const outcome = await withDeadline(
            applyEntry(entry, to.driver, from.driver),
            settings.operationTimeoutMs,
            to.name,
          );
          // A token whose issuer's own mirror has not landed yet: retried, then journaled.
          if (outcome === 'pending') throw new Error(`${itemOf(entry)} waits for an earlier mirror`);
        }
        const lag = performance.now() - ackedAt;
        stats.sync.writes++;
        stats.sync.lastLagMs = lag;
        stats.sync.maxLagMs = Math.max(stats.sync.maxLagMs, lag);
        emit('SyncLag', lag, 'Milliseconds', { from: from.name, to: to.name });
        return;
      } catch (error) {
        if (isOutage(error)) breaker.open(to, error);
        if (attempt >= settings.syncAttempts || to.state !== 'closed') {
          await journalFailed(from, to, entries);
          return;
        }
        stats.sync.retries++;
        emit('SyncRetry', 1, 'Count', { from: from.name, to: to.name });
        await sleep(50 * 2 ** attempt);
      }
    }
  }

  async function journalFailed(from: Member, to: Member, entries: JournalEntry[]): Promise<void> {
    stats.sync.failures++;
    emit('SyncFailure', 1, 'Count', { from: from.name, to: to.name });
    try {
      // Durable: replayed into the secondary by a later reconcile.
      await journals.append(from, to.name, entries, 'mirror');
      stats.sync.journaled += entries.length;
      // A secondary that answers again but whose breaker never opened (a refusal, not an
      // outage) gets its journal replayed after migration.syncInterval.
      scheduleReconcile(settings.syncIntervalMs);
    } catch {
      emit('SyncLost', entries.length, 'Count', { from: from.name, to: to.name });
    }
  }

  async function mirror(from: Member, to: Member, entries: JournalEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const ackedAt = performance.now();
    if (!settings.sync.async) return apply(from, to, entries, ackedAt);
    // Mirrors of one item run in the order their writes were answered (a set then a delete
    // must not arrive as a delete then a set); different items run concurrently.
    const items = entries.map(itemOf);
    const before = items.map((item) => mirrorTails.get(item)).filter((p) => p !== undefined);
    const pending: Promise<void> = Promise.all(before)
      .then(() => apply(from, to, entries, ackedAt))
      .finally(() => {
        pendingMirrors.delete(pending);
        for (const item of items) if (mirrorTails.get(item) === pending) mirrorTails.delete(item);
        stats.sync.pending = pendingMirrors.size;
      });
    for (const item of items) mirrorTails.set(item, pending);
    pendingMirrors.add(pending);
    stats.sync.pending = pendingMirrors.size;
  }

  return {
    mirror,
    async flush() {
      while (pendingMirrors.size > 0) await Promise.allSettled([...pendingMirrors]);
    },
    running: () => [...pendingMirrors],
  };
}
