/** What `validate` is given and what it answers: its options, report and error. */
import type { PgTarget } from '../pg-target.js';
import type { StoreName } from '../records.js';
import type { RecordSource } from '../source.js';

export interface ValidateOptions {
  source: RecordSource;
  target: PgTarget;
  stores?: readonly StoreName[];
  /** Compare this many randomly chosen items per store instead of every one (counts stay exact). */
  sample?: number;
  /** Times (expiries, creation times) equal within this are the same; default 2000 ms. */
  toleranceMs?: number;
  batchSize?: number;
  /** Mismatches listed per store and kind (all are counted); default 20. */
  listLimit?: number;
  onProgress?: (store: StoreName, checked: number, estimate: number | undefined) => void;
  /** Stops between batches (Ctrl-C): `validate` then throws `ValidationInterrupted`. */
  signal?: AbortSignal;
}

/** `validate` was stopped by its signal before it compared everything: there is no verdict. */
export class ValidationInterrupted extends Error {
  constructor() {
    super('validation interrupted before it compared everything: no verdict');
    this.name = 'ValidationInterrupted';
  }
}

export interface Mismatch {
  id: string;
  /** For `changed`: the first field that differs; for `ttl`: the time field. */
  field?: string;
  driftMs?: number;
}

export interface StoreValidation {
  sourceCount: number;
  targetCount: number;
  /** Items compared (all of the source's, or the sample). */
  checked: number;
  matched: number;
  /** On the source, not on the target. */
  missing: number;
  /** On the target, not on the source (full runs only). */
  extra: number;
  /** A value or field differs. */
  changed: number;
  /** Only an expiry or time differs by more than the tolerance. */
  ttlDrift: number;
  examples: { missing: Mismatch[]; extra: Mismatch[]; changed: Mismatch[]; ttlDrift: Mismatch[] };
  ok: boolean;
}

export interface ValidationReport {
  source: string;
  target: string;
  sample?: number;
  toleranceMs: number;
  stores: Partial<Record<StoreName, StoreValidation>>;
  ok: boolean;
  durationMs: number;
}
