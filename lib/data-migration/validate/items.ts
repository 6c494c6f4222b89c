/**
 * Validating a store whose items have the same id on both sides: every item, or a random
 * sample. A mismatch is looked at once more on both sides before it counts (a mirror in flight,
 * an item that expired or changed since).
 */
import type { PgTarget } from '../pg-target.js';
import { compareRecords, idOf, type RecordOf, type StoreName } from '../records.js';
import type { RecordSource } from '../source.js';
import { ValidationInterrupted } from './report.js';
import { printable, type StoreTally } from './tally.js';

export interface ItemsRun<S extends StoreName> {
  source: RecordSource;
  target: PgTarget;
  store: S;
  batchSize: number;
  toleranceMs: number;
  tally: StoreTally;
  signal?: AbortSignal;
  onProgress?: (counted: number) => void;
}

const interrupted = (signal: AbortSignal | undefined) => {
  if (signal?.aborted) throw new ValidationInterrupted();
};

/** Compares source records with the target's, each mismatch read again on both sides. */
async function compareBatch<S extends StoreName>(run: ItemsRun<S>, records: RecordOf[S][]): Promise<void> {
  const { source, target, store, tally } = run;
  const ids = records.map((record) => idOf(store, record));
  const onTarget = await target.fetch(store, ids);
  const again: string[] = [];
  records.forEach((record, i) => {
    const stored = onTarget[i];
    if (stored !== undefined && compareRecords(store, record, stored, run.toleranceMs).kind === 'same')
      tally.matched();
    else again.push(ids[i]!);
  });
  if (again.length === 0) return;
  const [nowSource, nowTarget] = await Promise.all([source.fetch(store, again), target.fetch(store, again)]);
  again.forEach((id, j) => {
    const onSource = nowSource[j];
    // Gone from the source meanwhile (ended, expired, acked): it counts as neither, unless the target still has it.
    if (onSource === undefined) {
      if (nowTarget[j] !== undefined) tally.mismatch('extra', { id: printable(id) });
      return;
    }
    tally.judge(store, id, onSource, nowTarget[j]);
  });
}

/** Every item: compared batch by batch, then the target's items the source did not list. */
export async function validateEvery<S extends StoreName>(run: ItemsRun<S>): Promise<void> {
  const { source, target, store, batchSize, tally } = run;
  const sourceIds = new Set<string>();
  for await (const batch of source.batches(store, undefined, batchSize)) {
    interrupted(run.signal);
    for (const record of batch.records) sourceIds.add(idOf(store, record));
    await compareBatch(run, batch.records);
    run.onProgress?.(tally.result.checked);
  }
  tally.result.sourceCount = sourceIds.size;
  // Extras: on the target and not on the source — unless the source has them now.
  const extras: string[] = [];
  for await (const rows of target.scan(store, batchSize)) {
    interrupted(run.signal);
    for (const row of rows) {
      const id = idOf(store, row);
      if (!sourceIds.has(id)) extras.push(id);
    }
  }
  for (let i = 0; i < extras.length; i += batchSize) {
    const ids = extras.slice(i, i + batchSize);
    const [nowSource, nowTarget] = await Promise.all([source.fetch(store, ids), target.fetch(store, ids)]);
    ids.forEach((id, j) => {
      const onSource = nowSource[j];
      const onTarget = nowTarget[j];
      if (onTarget === undefined) return; // gone from the target meanwhile
      if (onSource !== undefined) {
        // Created on the source after it was listed: compare it like any other.
        tally.result.sourceCount += 1;
        tally.judge(store, id, onSource, onTarget);
        return;
      }
      tally.mismatch('extra', { id: printable(id) });
    });
  }
}

/** `sample` items chosen in one pass (reservoir sampling: each has the same chance), then compared. */
export async function validateSample<S extends StoreName>(
  run: ItemsRun<S>,
  sample: number,
  random: () => number,
): Promise<void> {
  const { source, store, batchSize, tally } = run;
  const chosen: RecordOf[S][] = [];
  for await (const batch of source.batches(store, undefined, batchSize)) {
    interrupted(run.signal);
    for (const record of batch.records) {
      tally.result.sourceCount += 1;
      if (chosen.length < sample) chosen.push(record);
      else {
        const slot = Math.floor(random() * tally.result.sourceCount);
        if (slot < chosen.length) chosen[slot] = record;
      }
    }
    run.onProgress?.(tally.result.sourceCount);
  }
  for (let i = 0; i < chosen.length; i += batchSize) await compareBatch(run, chosen.slice(i, i + batchSize));
}
