/** What `copy` is given and what it answers. */
import type { PgTarget } from '../pg-target.js';
import type { StoreName } from '../records.js';
import type { RecordSource } from '../source.js';

export interface CopyOptions {
  source: RecordSource;
  target: PgTarget;
  /** The checkpoint's name; default derived from source and target. */
  job?: string;
  /** Items per batch (default 1000). */
  batchSize?: number;
  /** Stores to copy (default: every store the source holds). */
  stores?: readonly StoreName[];
  /** Read and count everything, write nothing (no checkpoint either). */
  dryRun?: boolean;
  /** Ignore the checkpoint's positions and read every store from the start (audit keeps its mark). */
  restart?: boolean;
  /** Re-read each batch of a mutable store and rewrite what changed meanwhile (default true). */
  verify?: boolean;
  /**
   * Dual-write: from this time (ms) every writer mirrors audit entries to the target, so the copy
   * appends only older ones; entries within `auditWindowMs` before it (a rollout, when some
   * writers mirrored and some did not), up to and including its own millisecond (the source
   * stamps entries to the millisecond), are reconciled by content instead.
   */
  dualWriteSinceMs?: number;
  /** Length of that reconciled window (default 15 minutes). */
  auditWindowMs?: number;
  /** Times equal within this are the same (verification, audit matching); default 1000 ms. */
  toleranceMs?: number;
  /**
   * Queues: delete each batch of messages (and dedup ids) from the source once the target
   * committed it — for a queue whose routing already moved to the target, so what is left on
   * the source is delivered from the target only. Needs a source that can `remove`.
   */
  move?: boolean;
  /** Called after every batch and when a store starts and ends. */
  onProgress?: (progress: CopyProgress) => void;
  /** Stops after the batch being written (Ctrl-C): the checkpoint is where the next run starts. */
  signal?: AbortSignal;
}

export interface StoreReport {
  /** Items read from the source (live ones; expired and reserved ones are in `skipped`). */
  read: number;
  /** Items written to the target (0 in a dry run). */
  written: number;
  /** Items written again because the source changed them during the copy, or removed because it deleted them. */
  rewritten: number;
  removed: number;
  /** Audit entries already on the target (mirrored by dual-write), not appended again. */
  matched: number;
  /** Items deleted from the source after the target committed them (`move`). */
  moved: number;
  skipped: Record<string, number>;
  /** Estimated size before the copy, for progress; undefined when unknown. */
  estimate?: number;
  durationMs: number;
  done: boolean;
}

export interface CopyProgress {
  store: StoreName;
  phase: 'start' | 'batch' | 'end';
  report: StoreReport;
  /** All stores so far. */
  totalRead: number;
  totalEstimate?: number;
  elapsedMs: number;
}

export interface CopyReport {
  job: string;
  source: string;
  target: string;
  dryRun: boolean;
  /** The copy went on from an earlier run's checkpoint. */
  resumed: boolean;
  /** Stopped by `signal` before the end: run again to resume. */
  interrupted: boolean;
  stores: Partial<Record<StoreName, StoreReport>>;
  durationMs: number;
  /** Items read per second over the whole run. */
  rate: number;
}
