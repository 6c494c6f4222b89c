/**
 * Settling a written batch of a mutable store: its items are read from the source again and
 * those that changed are written again (those gone are removed) until the source agrees with
 * what was written, so whatever the order of a dual-write mirror and the copy, the target ends
 * with the source's latest state.
 */
import type { PgTarget } from '../pg-target.js';
import { compareRecords, idOf, type RecordOf, type StoreName } from '../records.js';
import type { Cursor, RecordSource } from '../source.js';
import type { StoreReport } from './report.js';
import type { StoreState } from './state.js';

const VERIFY_ROUNDS = 5;
/** An expiry recomputed from a remaining TTL moves by a millisecond or two between reads; a keep-alive or a new value moves it (or the value) by more. */
const SETTLE_TOLERANCE_MS = 50;

/** Re-reads written items until the source agrees with what was written. */
export async function settle<S extends StoreName>(
  source: RecordSource,
  target: PgTarget,
  store: S,
  written: RecordOf[S][],
  report: StoreReport,
): Promise<void> {
  // What the target was last given for each item: a record, or undefined once removed. An item
  // removed is looked at once more too: re-created on the source meanwhile, its mirror may have
  // landed just before the removal.
  let pending: { id: string; last: RecordOf[S] | undefined }[] = written.map((record) => ({
    id: idOf(store, record),
    last: record,
  }));
  for (let round = 0; round < VERIFY_ROUNDS && pending.length > 0; round++) {
    const current = await source.fetch(
      store,
      pending.map((item) => item.id),
    );
    const changed: RecordOf[S][] = [];
    const gone: string[] = [];
    const next: typeof pending = [];
    current.forEach((now, i) => {
      const { id, last } = pending[i]!;
      if (now === undefined) {
        if (last !== undefined) {
          gone.push(id);
          next.push({ id, last: undefined });
        }
        return;
      }
      if (last === undefined || compareRecords(store, last, now, SETTLE_TOLERANCE_MS).kind !== 'same') {
        changed.push(now);
        next.push({ id, last: now });
      }
    });
    if (gone.length > 0) {
      await target.remove(store, gone);
      report.removed += gone.length;
    }
    if (changed.length > 0) {
      await target.write(store, changed, undefined);
      report.rewritten += changed.length;
    }
    pending = next;
  }
  if (pending.length > 0)
    report.skipped[`still changing after ${VERIFY_ROUNDS} re-reads (validate them)`] = pending.length;
}

/**
 * A mutable store's batch is settled while the next one is written. The checkpoint then names
 * the last *settled* batch, so a resumed copy reads an unsettled one again rather than trusting
 * it. This owns that lag: the batch being settled and the position settled so far.
 */
export class SettleLag {
  private settling: Promise<void> | undefined;
  private settlingCursor: Cursor | undefined;

  constructor(
    /** Where the last settled batch ends. */
    public settledCursor: Cursor | undefined,
    private readonly storeState: StoreState,
  ) {}

  /** Settles `work`'s batch (ending at `cursor`) in the background; its error surfaces at `settled`. */
  start(work: Promise<void>, cursor: Cursor): void {
    this.settling = work;
    this.settling.catch(() => {});
    this.settlingCursor = cursor;
  }

  /** A batch with nothing to settle: settled at once. */
  settledAt(cursor: Cursor | undefined): void {
    this.settledCursor = cursor;
    this.storeState.cursor = cursor;
  }

  /** Waits for the batch being settled, then moves the store's position past it. */
  async settled(): Promise<void> {
    if (!this.settling) return;
    await this.settling;
    this.settling = undefined;
    this.settledAt(this.settlingCursor);
  }
}
