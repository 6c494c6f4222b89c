/** Every HTTP request emits one EMF latency metric named by its operation, on success and on error. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createStorage, type Storage } from '../../lib/storage/index.js';
import { captureEmf, type Emf } from '../support/emf.js';

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

type Call = typeof import('./api-support.js')['call'];

/**
 * Serves `storage` with EMF output on, runs `requests` with an admin token, closes the storage
 * and answers the EMF entries the requests printed.
 */
async function emfDuring(
  storage: Storage,
  requests: (call: Call, token: string) => Promise<void>,
): Promise<Emf[]> {
  vi.resetModules();
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  vi.stubEnv('POWERTOOLS_DEV', '');
  vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
  const capture = captureEmf();
  const { call, serveFrom } = await import('./api-support.js');
  try {
    serveFrom(storage);
    const { token } = await storage.tokens.issue({ identity: 'metrics', scopes: ['admin'] });
    await requests(call, token);
  } finally {
    await storage.close();
  }
  return capture.stop();
}

describe('operation metrics (EMF)', () => {
  it('one Latency metric per request with operation and backend dimensions, errors included', async () => {
    const emf = await emfDuring(createStorage({ backend: 'memory' }), async (call, token) => {
      expect((await call('PUT /kv/{key}', { token, params: { key: 'k' }, body: { value: 1 } })).status).toBe(
        200,
      );
      expect((await call('GET /kv/{key}', { token, params: { key: 'missing' } })).status).toBe(404);
    });
    expect(emf.map((entry) => [entry.operation, entry.status])).toEqual([
      ['kv.set', '200'],
      ['kv.get', '404'],
    ]);
    for (const entry of emf) {
      const [directive] = entry._aws.CloudWatchMetrics;
      expect(directive!.Namespace).toBe('KubentlyStorage');
      expect(directive!.Metrics).toEqual([{ Name: 'Latency', Unit: 'Milliseconds' }]);
      expect(directive!.Dimensions[0]).toEqual(expect.arrayContaining(['operation', 'backend']));
      expect(entry.backend).toBe('memory');
      expect(entry.Latency).toEqual(expect.any(Number));
    }
  });

  it('pool use per backend, sampled at most once per 10 s: in use, waiting and utilisation of the bound', async () => {
    const storage = createStorage({ backend: 'memory' });
    // The memory backend has no pool: report two, one bounded and one not.
    Object.assign(storage, {
      pools: () => ({
        postgresql: { inUse: 3, idle: 2, waiting: 1, max: 8 },
        redis: { inUse: 2, idle: 1, waiting: 0, max: null },
      }),
    });
    const emf = await emfDuring(storage, async (call, token) => {
      for (let i = 0; i < 3; i++) {
        expect((await call('GET /kv/{key}', { token, params: { key: 'k' } })).status).toBe(404);
      }
    });
    const gauges = emf
      .filter((entry) => entry._aws.CloudWatchMetrics[0]!.Metrics[0]!.Name.startsWith('Pool'))
      .map((entry) => {
        const { Name, Unit } = entry._aws.CloudWatchMetrics[0]!.Metrics[0]!;
        expect(entry._aws.CloudWatchMetrics[0]!.Dimensions[0]).toContain('backend');
        return [entry.backend, Name, Unit, entry[Name]];
      });
    expect(gauges).toEqual([
      ['postgresql', 'PoolInUse', 'Count', 3],
      ['postgresql', 'PoolWaiting', 'Count', 1],
      ['postgresql', 'PoolUtilization', 'Percent', 37.5],
      ['redis', 'PoolInUse', 'Count', 2],
      ['redis', 'PoolWaiting', 'Count', 0],
    ]);
  });

  it('one emitter serves every observation: each line has its own dimensions and metadata only', async () => {
    vi.resetModules();
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('POWERTOOLS_DEV', '');
    const capture = captureEmf();
    const { emitMetric, metrics } = await import('../../functions/runtime/metrics.js');
    const singleMetric = vi.spyOn(metrics, 'singleMetric');
    let emf: Emf[] = [];
    try {
      emitMetric({
        name: 'Latency',
        value: 1.5,
        unit: 'Milliseconds',
        dimensions: { operation: 'kv.get', backend: 'redis' },
        metadata: { status: '200' },
      });
      emitMetric({ name: 'PoolInUse', value: 2, unit: 'Count', dimensions: { backend: 'postgresql' } });
    } finally {
      emf = capture.stop();
    }
    expect(emf.map(({ _aws, ...fields }) => [_aws.CloudWatchMetrics[0]!.Dimensions, fields])).toEqual([
      [
        [['service', 'operation', 'backend']],
        { service: 'kubently-storage', operation: 'kv.get', backend: 'redis', status: '200', Latency: 1.5 },
      ],
      [[['service', 'backend']], { service: 'kubently-storage', backend: 'postgresql', PoolInUse: 2 }],
    ]);
    // Powertools' singleMetric() builds a new Metrics (and Console) each time: once per container.
    expect(singleMetric.mock.calls.length).toBeLessThanOrEqual(1);
  });
});
