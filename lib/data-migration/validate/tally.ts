/**
 * One store's validation as it goes: the counts and the examples kept of each kind of
 * mismatch (up to the list limit; every one is counted), and the verdict on a compared pair.
 */
import { compareRecords, type RecordOf, type StoreName } from '../records.js';
import type { Mismatch, StoreValidation } from './report.js';

export type MismatchKind = keyof StoreValidation['examples'];

/** An id as a report shows it: the parts of a two-part id joined with a space. */
export function printable(id: string): string {
  return id.replace('\u0000', ' ');
}

export class StoreTally {
  readonly result: StoreValidation = {
    sourceCount: 0,
    targetCount: 0,
    checked: 0,
    matched: 0,
    missing: 0,
    extra: 0,
    changed: 0,
    ttlDrift: 0,
    examples: { missing: [], extra: [], changed: [], ttlDrift: [] },
    ok: true,
  };

  constructor(
    private readonly listLimit: number,
    private readonly toleranceMs: number,
  ) {}

  /** Counts a mismatch of `kind` and keeps it as an example while there is room. */
  mismatch(kind: MismatchKind, example: Mismatch): void {
    this.result[kind] += 1;
    if (this.result.examples[kind].length < this.listLimit) this.result.examples[kind].push(example);
  }

  matched(): void {
    this.result.checked += 1;
    this.result.matched += 1;
  }

  /** The verdict on one compared item: `onTarget` undefined is missing. */
  judge<S extends StoreName>(
    store: S,
    id: string,
    onSource: RecordOf[S],
    onTarget: RecordOf[S] | undefined,
  ): void {
    if (onTarget === undefined) {
      this.result.checked += 1;
      this.mismatch('missing', { id: printable(id) });
      return;
    }
    const difference = compareRecords(store, onSource, onTarget, this.toleranceMs);
    if (difference.kind === 'same') {
      this.matched();
      return;
    }
    this.result.checked += 1;
    if (difference.kind === 'changed')
      this.mismatch('changed', { id: printable(id), field: difference.field });
    else
      this.mismatch('ttlDrift', { id: printable(id), field: difference.field, driftMs: difference.driftMs });
  }

  /** Settles the verdict once the target's count is in. */
  finish(targetCount: number): StoreValidation {
    const result = this.result;
    result.targetCount = targetCount;
    result.ok = result.missing === 0 && result.extra === 0 && result.changed === 0 && result.ttlDrift === 0;
    return result;
  }
}
