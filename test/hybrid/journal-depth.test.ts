/**
 * Journal depth: what waits in each backend's journals (Redis and the local PostgreSQL) is
 * answered by `journalDepth()` and reported as `JournalDepth` per backend — by the scheduled
 * cleanup too, so the gauge exists whether or not writes arrive.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { HybridMetric } from '../../lib/storage/hybrid/index.js';
import { APPEND_JOURNAL_QUEUE, JOURNAL_QUEUE } from '../../lib/storage/hybrid/journal.js';
import { hybridControl } from '../../lib/storage/index.js';
import { lambdaContext } from '../support/lambda.js';
import { type HybridHandle, hybridStorage, hybridUnavailable } from './support.js';

const unavailable = await hybridUnavailable();
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

describe.skipIf(unavailable !== undefined)('hybrid: journal depth', () => {
  const handles: HybridHandle[] = [];
  afterEach(async () => {
    vi.unstubAllEnvs();
    await Promise.all(handles.splice(0).map((h) => h.dispose()));
  });

  it('counts the entries of both journals of each backend and reports them; the cleanup samples them', async () => {
    const metrics: HybridMetric[] = [];
    const handle = hybridStorage(redisUrl, { metrics: (m) => metrics.push(m) });
    handles.push(handle);
    const control = hybridControl(handle.storage)!;
    expect(await control.journalDepth()).toEqual({ redis: 0, postgresql: 0 });

    // Entries as a failover leaves them (only counted here: no reconciler is asked to replay them).
    const { redis, postgresql } = control.drivers;
    for (let i = 0; i < 3; i++)
      await redis!.queues.send(JOURNAL_QUEUE, JSON.stringify({ n: i }), 60_000, undefined);
    await postgresql!.queues.send(APPEND_JOURNAL_QUEUE, JSON.stringify({ n: 0 }), 60_000, undefined);
    metrics.length = 0;
    expect(await control.journalDepth()).toEqual({ redis: 3, postgresql: 1 });
    const depths = () =>
      metrics
        .filter((m) => m.name === 'JournalDepth')
        .map((m) => [m.dimensions.backend, m.value, m.unit])
        .sort();
    expect(depths()).toEqual([
      ['postgresql', 1, 'Count'],
      ['redis', 3, 'Count'],
    ]);

    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
    // The same module instances as the storage's (hybridControl knows the storages lib built).
    const { useStorage } = await import('../../functions/runtime/storage.js');
    const { handler: cleanup } = await import('../../functions/cleanup.js');
    useStorage(handle.storage);
    metrics.length = 0;
    await cleanup({}, lambdaContext('cleanup'));
    expect(depths()).toEqual([
      ['postgresql', 1, 'Count'],
      ['redis', 3, 'Count'],
    ]);
  });
});
