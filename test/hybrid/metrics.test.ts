/** The EMF sink: a hybrid metric becomes one Powertools single metric, in namespace KubentlyStorage. */
import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, expect, it, vi } from 'vitest';
import { emfSink } from '../../lib/storage/hybrid/index.js';
import { captureEmf } from '../support/emf.js';

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

it('emfSink writes one EMF line per metric with its dimensions and unit', () => {
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  vi.stubEnv('POWERTOOLS_DEV', '');
  const capture = captureEmf();
  const metrics = new Metrics({ namespace: 'KubentlyStorage', serviceName: 'test' });
  emfSink(metrics)({
    name: 'BackendLatency',
    value: 1.23456,
    unit: 'Milliseconds',
    dimensions: { backend: 'redis', operation: 'kv.get' },
  });
  const emf = capture.stop();
  expect(emf).toHaveLength(1);
  expect(emf[0]).toMatchObject({ backend: 'redis', operation: 'kv.get', BackendLatency: 1.235 });
  expect(emf[0]!._aws.CloudWatchMetrics[0]).toMatchObject({
    Namespace: 'KubentlyStorage',
    Metrics: [{ Name: 'BackendLatency', Unit: 'Milliseconds' }],
  });
});
