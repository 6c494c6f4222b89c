/**
 * The hybrid backend's settings: the configuration's `hybrid.routing|fallback|sync` and
 * `migration.dualWrite` (lib/config owns them and their defaults), plus the tuning knobs that
 * are not configuration-file fields (deadlines, probe interval, cache lifetimes) and a metrics
 * sink, which callers pass in `HybridOptions` (which also override the configuration, for tests).
 */
import type { StorageConfig } from '../../config/index.js';
import type { DataBackend } from '../../config/schema.js';
import type { StorageMetric } from '../../metrics.js';

export type BackendName = DataBackend;
/** The data types of the routing table (`hybrid.routing`; lib/config owns their defaults). */
export type DataType = keyof StorageConfig['hybrid']['routing'];

/** A metric the hybrid reports (lib/metrics.ts names them); the functions layer publishes it as EMF. */
export type HybridMetric = StorageMetric;

export interface HybridOptions {
  /** Overrides of the configuration's `hybrid` / `migration` sections (tests, callers without a config file). */
  routing?: Partial<Record<DataType, BackendName>>;
  fallback?: { enabled?: boolean; order?: BackendName[] };
  sync?: { enabled?: boolean; async?: boolean };
  /**
   * While a backend's breaker is closed, an operation on it that has not answered after this
   * many ms counts as an outage and is served by the fallback (default `hybrid.fallback.timeout`,
   * 0.5 s: failover within 1 s even when the primary hangs). Long polls get their wait on top.
   * Only with fallback enabled.
   */
  operationTimeoutMs?: number;
  /**
   * The deadline of a backend's operations until it has answered once in this process
   * (default 5000): connecting (a PostgreSQL compute waking up, a TLS handshake) does not count
   * as an outage. Never shorter than `operationTimeoutMs`.
   */
  firstUseTimeoutMs?: number;
  /** How long a reconciler holds a journal's lock without renewing it (default 30000; tests shorten it). */
  journalLockMs?: number;
  /** How often an open breaker probes its backend's health check (default 250 ms: at most 4 per second). */
  probeIntervalMs?: number;
  /**
   * How long a container trusts that no other backend's journal holds entries for a backend
   * before it looks again (default 250 ms; 0 = look on every write). While entries wait, a write
   * the primary takes directly is journaled behind them, so the replay cannot undo it.
   */
  journalCheckMs?: number;
  /** `isClusterActive` read-through cache: longest a positive answer is kept (default 10 s), negative (default 1 s, 0 = never). */
  cache?: { enabled?: boolean; ttlMs?: number; negativeTtlMs?: number };
  /** Dual-write: attempts of a failed secondary write before it goes to the durable journal (default 3). */
  syncAttempts?: number;
  /** Dual-write: ms before journaled secondary writes are retried (default `migration.syncInterval`). */
  syncIntervalMs?: number;
  /** Receives every metric as it happens (latency, routing, fallback, sync lag, cache). */
  metrics?: (metric: HybridMetric) => void;
}

export interface HybridSettings {
  routing: Record<DataType, BackendName>;
  fallback: { enabled: boolean; order: BackendName[] };
  sync: { enabled: boolean; async: boolean };
  operationTimeoutMs: number;
  firstUseTimeoutMs: number;
  journalLockMs: number;
  probeIntervalMs: number;
  journalCheckMs: number;
  cache: { enabled: boolean; ttlMs: number; negativeTtlMs: number };
  syncAttempts: number;
  /** Dual-write: a secondary write that failed its attempts is retried from the journal after this (`migration.syncInterval`). */
  syncIntervalMs: number;
  metrics: ((metric: HybridMetric) => void) | undefined;
}

export function hybridSettings(config: StorageConfig, options: HybridOptions = {}): HybridSettings {
  const { hybrid, migration } = config;
  const timeoutMs = options.operationTimeoutMs ?? Math.round(hybrid.fallback.timeout * 1000);
  return {
    routing: { ...hybrid.routing, ...options.routing },
    fallback: {
      enabled: options.fallback?.enabled ?? hybrid.fallback.enabled,
      order: [...(options.fallback?.order ?? hybrid.fallback.order)],
    },
    sync: {
      enabled: options.sync?.enabled ?? (hybrid.sync.enabled || migration.dualWrite),
      async: options.sync?.async ?? hybrid.sync.async,
    },
    operationTimeoutMs: timeoutMs,
    firstUseTimeoutMs: Math.max(options.firstUseTimeoutMs ?? 5000, timeoutMs),
    journalLockMs: Math.max(options.journalLockMs ?? 30_000, 1000),
    probeIntervalMs: Math.max(options.probeIntervalMs ?? 250, 200),
    journalCheckMs: Math.max(options.journalCheckMs ?? 250, 0),
    cache: {
      enabled: options.cache?.enabled ?? true,
      ttlMs: options.cache?.ttlMs ?? 10_000,
      negativeTtlMs: options.cache?.negativeTtlMs ?? 1_000,
    },
    syncAttempts: Math.max(1, options.syncAttempts ?? 3),
    syncIntervalMs: Math.round(options.syncIntervalMs ?? migration.syncInterval * 1000),
    metrics: options.metrics,
  };
}

/** The backends a hybrid with these settings talks to. */
export function backendsInUse(settings: HybridSettings): Set<BackendName> {
  const used = new Set<BackendName>(Object.values(settings.routing));
  if (settings.fallback.enabled) for (const b of settings.fallback.order) used.add(b);
  if (settings.sync.enabled) {
    used.add('redis');
    used.add('postgresql');
  }
  return used;
}
