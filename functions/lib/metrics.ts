import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

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
