/** The hybrid's counters (also sent to `metrics` as they change). */
import type { BreakerState } from './context.js';
import type { BackendName } from './settings.js';

/** Counters the functions layer can publish (they are also sent to `metrics` as they change). */
export interface HybridStats {
  /** `dataType:backend:primary|fallback` → operations routed so. */
  routing: Record<string, number>;
  fallbackTriggers: Partial<Record<BackendName, number>>;
  breakers: Partial<Record<BackendName, BreakerState>>;
  /** The last outage of each backend: ms from its breaker opening to its reconciled close. */
  lastOutageMs: Partial<Record<BackendName, number>>;
  cache: {
    hits: number;
    misses: number;
    hitRatio: number;
    invalidations: number;
    invalidationFailures: number;
  };
  sync: {
    writes: number;
    retries: number;
    failures: number;
    journaled: number;
    pending: number;
    lastLagMs: number;
    maxLagMs: number;
  };
  /** `skipped`: entries acked without a write (superseded later in their batch, or a queue already moved). */
  reconcile: { runs: number; applied: number; skipped: number; pending: number; errors: number };
  /** Direct writes journaled behind entries that still waited for their backend (see `write`). */
  ordered: number;
}

export function newStats(): HybridStats {
  return {
    routing: {},
    fallbackTriggers: {},
    breakers: {},
    lastOutageMs: {},
    cache: { hits: 0, misses: 0, hitRatio: 0, invalidations: 0, invalidationFailures: 0 },
    sync: { writes: 0, retries: 0, failures: 0, journaled: 0, pending: 0, lastLagMs: 0, maxLagMs: 0 },
    reconcile: { runs: 0, applied: 0, skipped: 0, pending: 0, errors: 0 },
    ordered: 0,
  };
}
