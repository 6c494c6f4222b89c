/**
 * Publishing the hybrid's metrics as CloudWatch EMF without lib depending on the functions
 * layer or on Powertools: `emfSink(metrics)` takes anything shaped like a Powertools `Metrics`
 * (functions/lib/metrics.ts has one) and answers the `metrics` callback of `HybridOptions`.
 *
 * ```ts
 * createStorage(config, { hybrid: { metrics: emfSink(metrics) } });
 * ```
 *
 * One single-metric line per observation, dimensions as the hybrid names them (`backend`,
 * `operation`, `dataType`, `route`, …). The cache hit ratio is `CacheHit / (CacheHit +
 * CacheMiss)` in CloudWatch metric math; `hybridControl(storage).stats()` answers it in process.
 */
import type { HybridMetric } from './settings.js';

export interface SingleMetricLike {
  addDimensions(dimensions: Record<string, string>): void;
  // biome-ignore lint/suspicious/noExplicitAny: Powertools' MetricUnit enum; its values are these unit names.
  addMetric(name: string, unit: any, value: number): void;
}

export function emfSink(metrics: { singleMetric(): SingleMetricLike }): (metric: HybridMetric) => void {
  return (metric) => {
    const single = metrics.singleMetric();
    single.addDimensions(metric.dimensions);
    single.addMetric(metric.name, metric.unit, Math.round(metric.value * 1000) / 1000);
  };
}
