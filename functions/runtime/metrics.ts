import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  METRICS_NAMESPACE,
  type MetricName,
  type MetricSink,
  type MetricUnitName,
  type StorageMetric,
  type UndimensionedMetricName,
} from '../../lib/metrics.js';
import { emfSink } from '../../lib/storage/hybrid/metrics.js';
import type { PoolUse } from '../../lib/storage/types.js';

/**
 * One EMF metrics emitter per container (CloudWatch Embedded Metric Format: JSON lines that
 * CloudWatch turns into metrics, no API calls from the function). Namespace from
 * `POWERTOOLS_METRICS_NAMESPACE`, default `KubentlyStorage`; `POWERTOOLS_METRICS_DISABLED=true`
 * silences it (tests, local runs that do not want the lines). Every metric is one of
 * lib/metrics.ts's, which the deployment's alarms and dashboard are built from.
 */
export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE || METRICS_NAMESPACE,
  serviceName: process.env.POWERTOOLS_SERVICE_NAME || 'kubently-storage',
});

export { MetricUnit };

/**
 * The single-metric emitter every observation goes through, built on first use and reused:
 * Powertools' `singleMetric()` builds a new `Metrics` (with its own `Console`) per call, about a
 * third of a warm request's CPU. Reuse is safe: an observation's dimensions, metadata and metric
 * are added synchronously and `addMetric` publishes them at once (`singleMetric: true`), which
 * clears them and keeps the default dimensions.
 */
let single: ReturnType<Metrics['singleMetric']> | undefined;
const reusedSingleMetric = { singleMetric: () => (single ??= metrics.singleMetric()) };

/** lib's metrics (the hybrid's, PostgreSQL deadlocks) and the functions' own, as EMF lines. */
export const metricSink: MetricSink = emfSink(reusedSingleMetric);

/** Emits one metric of lib/metrics.ts's catalog now (one EMF line). */
export function emitMetric<N extends MetricName>(metric: StorageMetric<N>): void {
  metricSink(metric as StorageMetric);
}

/** Emits metrics that have no dimension of their own as one EMF line. */
export function emitTogether(
  entries: readonly { name: UndimensionedMetricName; value: number; unit: MetricUnitName }[],
): void {
  for (const { name, value, unit } of entries) metrics.addMetric(name, MetricUnit[unit], value);
  metrics.publishStoredMetrics();
}

/**
 * Records one operation's latency as a metric of its own, with the operation and
 * backend as dimensions, so every operation gets its own latency series in CloudWatch.
 */
export function recordOperation(operation: string, backend: string, latencyMs: number, status: number): void {
  // One EMF line per request, the status as metadata (searchable in Logs Insights) rather than a
  // dimension (one series per status would multiply cost).
  emitMetric({
    name: 'Latency',
    value: latencyMs,
    unit: 'Milliseconds',
    dimensions: { operation, backend },
    metadata: { status: String(status) },
  });
}

/** Pool use is sampled at most this often per container (a gauge read as requests arrive). */
export const POOL_SAMPLE_MS = 10_000;
let poolsSampledAt = Number.NEGATIVE_INFINITY;

/**
 * Records each backend's pool use (`storage.pools()`), at most once per `POOL_SAMPLE_MS`:
 * `PoolInUse` and `PoolWaiting` (Count) and, for a bounded pool, `PoolUtilization` (Percent of
 * its bound), dimension `backend`.
 */
export function recordPools(pools: Partial<Record<string, PoolUse>>, now = Date.now()): void {
  if (now - poolsSampledAt < POOL_SAMPLE_MS) return;
  poolsSampledAt = now;
  for (const [backend, use] of Object.entries(pools)) {
    if (!use) continue;
    const dimensions = { backend };
    emitMetric({ name: 'PoolInUse', value: use.inUse, unit: 'Count', dimensions });
    emitMetric({ name: 'PoolWaiting', value: use.waiting, unit: 'Count', dimensions });
    if (use.max) {
      const percent = Math.round((use.inUse / use.max) * 1000) / 10;
      emitMetric({ name: 'PoolUtilization', value: percent, unit: 'Percent', dimensions });
    }
  }
}
