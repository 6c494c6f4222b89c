/**
 * Publishing lib's metrics (lib/metrics.ts: the hybrid's, the PostgreSQL deadlock counter) as
 * CloudWatch EMF without lib depending on the functions layer or on Powertools: `emfSink(metrics)`
 * takes anything shaped like a Powertools `Metrics` (functions/runtime/metrics.ts has one) and
 * answers a `MetricSink`.
 *
 * ```ts
 * createStorage(config, { metrics: emfSink(metrics) });
 * ```
 *
 * One single-metric line per observation, dimensions as lib names them (`backend`,
 * `operation`, `dataType`, `route`, …), metadata as searchable fields. The cache hit ratio is
 * `CacheHit / (CacheHit + CacheMiss)` in CloudWatch metric math; `hybridControl(storage).stats()`
 * answers it in process.
 */
import type { MetricSink } from '../../metrics.js';

export interface SingleMetricLike {
  addDimensions(dimensions: Record<string, string>): void;
  addMetadata?(key: string, value: string): void;
  // biome-ignore lint/suspicious/noExplicitAny: Powertools' MetricUnit enum; its values are these unit names.
  addMetric(name: string, unit: any, value: number): void;
}

export function emfSink(metrics: { singleMetric(): SingleMetricLike }): MetricSink {
  return (metric) => {
    const single = metrics.singleMetric();
    single.addDimensions(metric.dimensions as Record<string, string>);
    for (const [key, value] of Object.entries(metric.metadata ?? {})) single.addMetadata?.(key, value);
    single.addMetric(metric.name, metric.unit, Math.round(metric.value * 1000) / 1000);
  };
}
