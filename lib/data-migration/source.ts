/**
 * The seam between a data migration and where its records come from: this project's Redis layout
 * (`redis-source.ts`) or the legacy upstream Kubently layout (`legacy.ts`). A source reads
 * each store in batches from a resumable position and can re-read items by id, which is what
 * the copy's verification and `validate --sample` need.
 */
import type { RecordOf, StoreName } from './records.js';

/** A position within one store's read, JSON-serialisable (it is kept in the checkpoint). */
export type Cursor = string | number | boolean | null | Cursor[] | { [key: string]: Cursor };

/** Whether a JSON value (a checkpoint's, read back) is a cursor. */
export function isCursor(value: unknown): value is Cursor {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return true;
  if (Array.isArray(value)) return value.every(isCursor);
  return typeof value === 'object' && Object.values(value).every(isCursor);
}

export interface SourceBatch<S extends StoreName> {
  records: RecordOf[S][];
  /** Where the next read starts: the batch's records are behind it. */
  cursor: Cursor;
  /** Source items looked at for this batch (read, expired or skipped). */
  scanned: number;
  /** Items read but not migrated (expired between listing and reading, reserved, unreadable), by reason. */
  skipped?: Record<string, number>;
  /** events: channels' last ids to carry over even where no event of theirs is left in history. */
  counters?: { channel: string; lastId: number }[];
}

export interface RecordSource {
  /** What to call it in messages, without credentials: `redis://127.0.0.1:6379/0, prefix kubently:`. */
  readonly name: string;
  readonly layout: 'kubently-storage' | 'legacy-kubently';
  /** The stores this source holds, in copy order. */
  readonly stores: readonly StoreName[];
  /** Whether items of a store can change after they were read (state) or are only appended. */
  mutable(store: StoreName): boolean;
  /** About how many items the store holds (for progress and ETA); undefined when unknown. */
  estimate(store: StoreName): Promise<number | undefined>;
  /** The store's records from `cursor` (undefined: from the start), `batchSize` at a time. */
  batches<S extends StoreName>(
    store: S,
    cursor: Cursor | undefined,
    batchSize: number,
  ): AsyncIterable<SourceBatch<S>>;
  /** The items' current state, in the order of `ids` (`idOf`); undefined where an item is gone. Not for `audit`. */
  fetch<S extends StoreName>(store: S, ids: string[]): Promise<(RecordOf[S] | undefined)[]>;
  /**
   * Deletes items the target now holds (`copy --move`: queue messages and their dedup ids, so a
   * queue moved to the target is not served twice). Only where the source supports it.
   */
  remove?(store: StoreName, ids: string[]): Promise<number>;
  /** Connects and checks the source is what it claims to be; throws `DataMigrationInputError` otherwise. */
  check(): Promise<void>;
  close(): Promise<void>;
}

/** One store of the source: what `RecordSource` asks of it, without the store argument. */
export interface StoreReader<S extends StoreName> {
  /** About how many items the store holds; undefined when unknown. */
  estimate(): Promise<number | undefined>;
  /** The store's records from `cursor` (undefined: from the start). */
  batches(cursor: Cursor | undefined, batchSize: number): AsyncIterable<SourceBatch<S>>;
  /** The items' current state in the order of `ids`; undefined where one is gone. */
  fetch(ids: string[]): Promise<(RecordOf[S] | undefined)[]>;
}

/**
 * A migration cannot start or go on because of what it was given or found: a bad URL, an
 * unreachable server, a target without its tables. The message says what to do; the CLI prints
 * it and exits non-zero, with no stack trace.
 */
export class DataMigrationInputError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataMigrationInputError';
  }
}

/** A cursor kept as text (a SCAN or HSCAN position, a stream id); `start` when there is none. */
export function textCursor(cursor: Cursor | undefined, start: string): string {
  if (cursor === undefined) return start;
  if (typeof cursor === 'string') return cursor;
  throw new DataMigrationInputError(
    `the checkpoint's position ${JSON.stringify(cursor)} is not one of this store`,
  );
}

/** A cursor `[name, n]`: where a walk by name (queues, channels) stands; `start` when there is none. */
export function namedCursor(cursor: Cursor | undefined, start: [string, number]): [string, number] {
  if (cursor === undefined) return start;
  if (Array.isArray(cursor) && cursor.length === 2) {
    const [name, n] = cursor;
    if (typeof name === 'string' && typeof n === 'number') return [name, n];
  }
  throw new DataMigrationInputError(
    `the checkpoint's position ${JSON.stringify(cursor)} is not one of this store`,
  );
}
