/**
 * Every custom metric this code emits: its name, unit and dimension names. The one owner of
 * these facts: the emitters (functions/runtime/metrics.ts, the hybrid's `emit`, the PostgreSQL
 * deadlock counter) are typed against it, so a metric emitted under another name or with other
 * dimensions does not compile, and the deployment's alarms and dashboard (deploy/monitoring.cjs)
 * are built from it.
 *
 * The functions publish them as CloudWatch EMF in namespace `KubentlyStorage`
 * (`POWERTOOLS_METRICS_NAMESPACE`), with Powertools' `service` dimension added to every set.
 */

/** The namespace the functions publish in unless `POWERTOOLS_METRICS_NAMESPACE` says otherwise. */
export const METRICS_NAMESPACE = 'KubentlyStorage';

export type MetricUnitName = 'Milliseconds' | 'Count' | 'Percent';

interface MetricSpec {
  unit: MetricUnitName;
  /** Each set of dimension names the metric is emitted with (besides Powertools' `service`). */
  dimensionSets: readonly (readonly string[])[];
  /** What it measures, for the dashboard and the runbook. */
  description: string;
}

export const METRICS = {
  // functions (functions/runtime/metrics.ts, functions/cleanup.ts, functions/runtime/relay.ts)
  Latency: {
    unit: 'Milliseconds',
    dimensionSets: [['operation', 'backend']],
    description: 'one HTTP request, by operation (routes table) and backend',
  },
  PoolInUse: { unit: 'Count', dimensionSets: [['backend']], description: 'pool connections in use' },
  PoolWaiting: {
    unit: 'Count',
    dimensionSets: [['backend']],
    description: 'callers waiting for a connection',
  },
  PoolUtilization: {
    unit: 'Percent',
    dimensionSets: [['backend']],
    description: 'connections in use, percent of the pool bound',
  },
  CleanupRows: {
    unit: 'Count',
    dimensionSets: [[], ['Store']],
    description: 'rows or keys one sweep removed (total, and per store)',
  },
  CleanupDurationMs: { unit: 'Milliseconds', dimensionSets: [[]], description: 'how long one sweep took' },
  CleanupFailures: { unit: 'Count', dimensionSets: [[]], description: 'sweeps that failed' },
  ConnectionsClosed: {
    unit: 'Count',
    dimensionSets: [[]],
    description: 'WebSocket connections one sweep closed because their token had expired',
  },
  ConsumerConnectionsEnded: {
    unit: 'Count',
    dimensionSets: [[]],
    description: 'connections gone without a $disconnect whose queue consumers one sweep ended',
  },
  RelayFailures: {
    unit: 'Count',
    dimensionSets: [[]],
    description: 'WebSocket frames postToConnection could not deliver (other than 410 Gone)',
  },
  PushDeliveries: {
    unit: 'Count',
    dimensionSets: [[]],
    description: 'queue messages pushed to WebSocket consumers (delivery frames posted)',
  },
  PushGiveBacks: {
    unit: 'Count',
    dimensionSets: [[]],
    description: 'pushed leases given back at once: frame not posted, consumer stopped or connection closed',
  },
  // lib/storage/postgresql
  Deadlocks: {
    unit: 'Count',
    dimensionSets: [['backend']],
    description: 'statements PostgreSQL aborted as a deadlock victim (SQLSTATE 40P01)',
  },
  // lib/storage/hybrid
  FallbackTriggered: {
    unit: 'Count',
    dimensionSets: [['backend']],
    description: "a backend's breaker opened: its data types are served by the fallback",
  },
  BreakerClosed: {
    unit: 'Milliseconds',
    dimensionSets: [['backend']],
    description: 'a breaker closed again; the value is the outage length',
  },
  RoutingDecision: {
    unit: 'Count',
    dimensionSets: [['dataType', 'backend', 'route']],
    description: 'operations by data type, the backend that served them and why',
  },
  BackendLatency: {
    unit: 'Milliseconds',
    dimensionSets: [['backend', 'operation']],
    description: "one backend's time for one operation",
  },
  JournaledBehind: {
    unit: 'Count',
    dimensionSets: [['backend']],
    description: 'direct writes journaled behind entries still waiting for replay',
  },
  JournalDepth: {
    unit: 'Count',
    dimensionSets: [['backend']],
    description: "entries waiting in a backend's journal for replay (sampled by the cleanup)",
  },
  SyncLag: {
    unit: 'Milliseconds',
    dimensionSets: [['from', 'to']],
    description: 'dual-write: how far the secondary write trailed the primary',
  },
  SyncFailure: {
    unit: 'Count',
    dimensionSets: [['from', 'to']],
    description: 'dual-write: a secondary write failed',
  },
  SyncRetry: {
    unit: 'Count',
    dimensionSets: [['from', 'to']],
    description: 'dual-write: a secondary write retried',
  },
  SyncLost: {
    unit: 'Count',
    dimensionSets: [['from', 'to']],
    description: 'dual-write: secondary writes neither applied nor journaled',
  },
  Reconciled: { unit: 'Count', dimensionSets: [['target']], description: 'journal entries replayed' },
  ReconcileError: {
    unit: 'Count',
    dimensionSets: [['source', 'target']],
    description: 'a journal replay pass failed',
  },
  CacheInvalidationFailure: {
    unit: 'Count',
    dimensionSets: [['backend']],
    description: 'isClusterActive cache entries that could not be invalidated',
  },
  CacheHit: { unit: 'Count', dimensionSets: [['cache']], description: 'read-through cache hits' },
  CacheMiss: { unit: 'Count', dimensionSets: [['cache']], description: 'read-through cache misses' },
} as const satisfies Record<string, MetricSpec>;

export type MetricName = keyof typeof METRICS;

/** The dimension names of `N` (a union over its sets). */
export type MetricDimensionName<N extends MetricName> = (typeof METRICS)[N]['dimensionSets'][number][number];

/** Metrics emitted with no dimension but Powertools' `service` (several of them fit one EMF line). */
export type UndimensionedMetricName = {
  [N in MetricName]: readonly [] extends (typeof METRICS)[N]['dimensionSets'][number] ? N : never;
}[MetricName];

/** One observation, as lib reports it to a sink (see `MetricSink`). */
export interface StorageMetric<N extends MetricName = MetricName> {
  name: N;
  value: number;
  unit: MetricUnitName;
  dimensions: Partial<Record<MetricDimensionName<N>, string>>;
  /** Searchable detail that is not a dimension (one series per value would multiply cost). */
  metadata?: Record<string, string>;
}

/** Receives lib's metrics; the functions layer publishes them as EMF (`emfSink`). */
export type MetricSink = (metric: StorageMetric) => void;

/** Calls `sink`, never throwing: a broken metrics sink must not fail a storage operation. */
export function report<N extends MetricName>(sink: MetricSink | undefined, metric: StorageMetric<N>): void {
  if (!sink) return;
  try {
    sink(metric as StorageMetric);
  } catch {
    // ignored on purpose
  }
}
