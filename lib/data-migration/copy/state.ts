/**
 * The copy's checkpoint state: per store its read position and counts, the audit high-water
 * mark, and the items a move still has to delete from the source. Kept as JSON in the target.
 */
import { STORES, type StoreName } from '../records.js';
import { type Cursor, isCursor } from '../source.js';

export interface StoreState {
  cursor?: Cursor;
  done?: boolean;
  read?: number;
  written?: number;
}

export interface JobState {
  stores: Partial<Record<StoreName, StoreState>>;
  /** The last audit entry (source id) appended: audit is never appended twice. */
  auditMark?: string | null;
  /**
   * `move`: items the target committed (in the same transaction as this checkpoint) and the
   * source may still hold. A run that stopped before deleting them from the source leaves them
   * here, and the next run deletes them first — else a later move would bring back messages
   * already delivered and acked on the target.
   */
  moving?: { store: StoreName; ids: string[] };
}

const isStoreName = (name: unknown): name is StoreName => STORES.some((store) => store === name);

const isObject = (value: unknown): value is { [key: string]: unknown } =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A checkpoint's state as the job state it was written from (anything else: a fresh start). */
export function jobStateOf(saved: Cursor | undefined): JobState {
  if (!isObject(saved) || !isObject(saved.stores)) return { stores: {} };
  const state: JobState = { stores: {} };
  for (const [store, value] of Object.entries(saved.stores)) {
    if (!isStoreName(store) || !isObject(value)) continue;
    const storeState: StoreState = {};
    if (value.cursor !== undefined && isCursor(value.cursor)) storeState.cursor = value.cursor;
    if (typeof value.done === 'boolean') storeState.done = value.done;
    if (typeof value.read === 'number') storeState.read = value.read;
    if (typeof value.written === 'number') storeState.written = value.written;
    state.stores[store] = storeState;
  }
  if (typeof saved.auditMark === 'string' || saved.auditMark === null) state.auditMark = saved.auditMark;
  const moving = saved.moving;
  if (isObject(moving) && isStoreName(moving.store) && Array.isArray(moving.ids))
    state.moving = { store: moving.store, ids: moving.ids.map(String) };
  return state;
}

/**
 * The job state as the checkpoint's value: the object itself (written as JSON when the batch
 * commits; it holds JSON values only, and undefined fields are left out as JSON does).
 */
export function checkpointOf(state: JobState): Cursor {
  return state as unknown as Cursor;
}
