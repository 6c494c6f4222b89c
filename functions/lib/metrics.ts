import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { PoolUse } from '../../lib/storage/types.js';

/**
 * One EMF metrics emitter per container (CloudWatch Embedded Metric Format: JSON lines that
 * CloudWatch turns into metrics, no API calls from the function). Namespace from
 * `POWERTOOLS_METRICS_NAMESPACE`, default `KubentlyStorage`; `POWERTOOLS_METRICS_DISABLED=true`
 * silences it (tests, local runs that do not want the lines).
 */
export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE || 'KubentlyStorage',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME || 'kubently-storage',
});

export { MetricUnit };

/**
 * Records one operation's latency as a metric of its own, with the operation and
 * backend as dimensions, so every operation gets its own latency series in CloudWatch.
 */
export function recordOperation(operation: string, backend: string, latencyMs: number, status: number): void {
  const single = metrics.singleMetric();
  single.addDimensions({ operation, backend });
  single.addMetadata('status', String(status));
  // A single metric is flushed by addMetric: one EMF line per request, the status as metadata
  // (searchable in Logs Insights) rather than a dimension (one series per status would multiply cost).
  single.addMetric('Latency', MetricUnit.Milliseconds, Math.round(latencyMs * 1000) / 1000);
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
    const gauge = (name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number) => {
      const single = metrics.singleMetric();
      single.addDimensions({ backend });
      single.addMetric(name, unit, value);
    };
    gauge('PoolInUse', MetricUnit.Count, use.inUse);
    gauge('PoolWaiting', MetricUnit.Count, use.waiting);
    if (use.max) gauge('PoolUtilization', MetricUnit.Percent, Math.round((use.inUse / use.max) * 1000) / 10);
  }
}
