/**
 * A write: on the type's primary, else on a fallback (journaled there durably before it is
 * answered), journaled behind entries still waiting for the primary, mirrored under dual-write.
 */
import type { Driver } from '../driver.js';
import type { Breaker } from './breaker.js';
import {
  deadlineOf,
  fallbacksOf,
  type HybridContext,
  isOutage,
  type Member,
  otherOf,
  primaryOf,
  withDeadline,
} from './context.js';
import type { JournalEntry } from './journal.js';
import type { Journals } from './journals.js';
import type { Mirror } from './mirror.js';
import type { Router } from './router.js';
import type { DataType } from './settings.js';

export interface WriteOptions<T, Before = unknown> {
  /** Mirrored to the other backend under dual-write (default true). */
  mirror?: boolean;
  /**
   * A state write (its entry says what the item now is; default true): while another
   * backend's journal still holds entries for the primary, a write the primary took directly
   * is journaled behind them, so their replay cannot undo it.
   */
  ordered?: boolean;
  /**
   * Entries that do not depend on the write's result (a queue to move): journaled on the
   * fallback *before* it takes the write, so no write there is ever left unjournaled.
   */
  journalFirst?: JournalEntry[];
  /**
   * Takes a fallback write back when its journal entry could not be written (it fails);
   * `before` is what `before()` read on the fallback just before the write.
   */
  undo?: (d: Driver, result: T, before: Before | undefined) => Promise<unknown>;
  /** Read on the fallback just before it takes the write (outages only), for `undo`. */
  before?: (d: Driver) => Promise<Before>;
  /**
   * `undo` restores the fallback's earlier state or removes only what this write created, so it
   * is safe under dual-write too; otherwise it is skipped there (the fallback's copy may be the
   * mirror of an acknowledged write).
   */
  undoSafeUnderSync?: boolean;
}

/**
 * A write. `snapshot` says what the write left behind (computed only when needed): journaled
 * durably in the fallback when the fallback served it, journaled behind waiting entries (see
 * `ordered`), mirrored to the other backend when dual-write is on.
 */
export type Write = <T, Before = unknown>(
  type: DataType,
  op: string,
  run: (d: Driver) => Promise<T>,
  snapshot: (d: Driver, result: T) => Promise<JournalEntry[]> | JournalEntry[],
  options?: WriteOptions<T, Before>,
) => Promise<T>;

export interface WriterDeps {
  router: Router;
  breaker: Breaker;
  journals: Journals;
  mirror: Mirror;
  scheduleReconcile: (delayMs: number) => void;
}

export function createWriter(ctx: HybridContext, deps: WriterDeps): Write {
  const { settings, stats, emit } = ctx;
  const { router, breaker, journals, mirror, scheduleReconcile } = deps;

  /** Journals what a fallback took, before the write is answered; undoes it when that fails. */
  async function journalFallbackWrite<T, Before>(
    served: Member,
    primary: Member,
    entries: JournalEntry[],
    value: T,
    prior: Before | undefined,
    { undo, undoSafeUnderSync = false }: WriteOptions<T, Before>,
  ): Promise<void> {
    try {
      // Journaled before answering: an acknowledged write is always on the way to the primary.
      await journals.append(served, primary.name, entries, 'fallback');
    } catch (error) {
      if (isOutage(error)) breaker.open(served, error);
      // Not acknowledged, so not left on the fallback either (best effort).
      if (undo && (undoSafeUnderSync || !settings.sync.enabled)) {
        await withDeadline(undo(served.driver, value, prior), deadlineOf(ctx, served), served.name).catch(
          () => {},
        );
      }
      throw error;
    }
  }

  /** Journals a direct write behind the entries still waiting for its primary in `waiting`. */
  async function journalBehind(waiting: Member[], primary: Member, entries: JournalEntry[]): Promise<void> {
    // The primary already holds it: a failure here fails the write rather than acknowledging
    // one a replay may undo.
    for (const source of waiting) {
      await journals.append(source, primary.name, entries, 'ordered').catch((error: unknown) => {
        if (isOutage(error)) breaker.open(source, error);
        throw error;
      });
    }
    stats.ordered++;
    emit('JournaledBehind', 1, 'Count', { backend: primary.name });
    scheduleReconcile(0);
  }

  return async function write<T, Before = unknown>(
    type: DataType,
    op: string,
    run: (d: Driver) => Promise<T>,
    snapshot: (d: Driver, result: T) => Promise<JournalEntry[]> | JournalEntry[],
    options: WriteOptions<T, Before> = {},
  ): Promise<T> {
    const { mirror: mirrored = true, ordered = true, journalFirst, undo, before } = options;
    const target = primaryOf(ctx, type);
    // Looked at *before* the write, whenever the primary will be tried (its breaker is closed,
    // or every candidate's is open): an entry acknowledged before this call is then either still
    // in the journal (waiting or leased) or already applied, never in flight past this write.
    const direct =
      target.state === 'closed' || [target, ...fallbacksOf(ctx, target)].every((m) => m.state !== 'closed');
    const waiting = ordered && ctx.fallbackOn && direct ? await journals.waitingFor(target) : [];
    let prior: Before | undefined;
    const { value, served, primary } = await router.serve(type, op, async (member) => {
      // Before the fallback takes it (a crash after the send leaves the message journaled)…
      if (journalFirst && member !== target)
        await journals.append(member, target.name, journalFirst, 'fallback');
      if (before && undo && member !== target) prior = await before(member.driver);
      return run(member.driver);
    });
    if (served !== primary) {
      // …and after it (a replay that ran between the two found the queue still empty).
      const entries = journalFirst ?? (await snapshot(served.driver, value));
      await journalFallbackWrite(served, primary, entries, value, prior, options);
      return value;
    }
    const to = settings.sync.enabled && mirrored ? otherOf(ctx, primary) : undefined;
    if (waiting.length === 0 && !to) return value;
    const entries = await snapshot(primary.driver, value);
    if (waiting.length > 0) await journalBehind(waiting, primary, entries);
    if (to) await mirror.mirror(primary, to, entries);
    return value;
  };
}
