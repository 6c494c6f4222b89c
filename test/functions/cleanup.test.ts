/**
 * The scheduled cleanup on real Redis and PostgreSQL: expired data is swept, the report is
 * logged, and CloudWatch metrics go out in Embedded Metric Format on stdout.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, expect, it, vi } from 'vitest';
import { resolveConfig } from '../../lib/config/index.js';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { postgresBackend, redisBackend } from '../support/backends.js';
import { captureEmf, type Emf } from '../support/emf.js';
import { lambdaContext } from '../support/lambda.js';
import { describeOnBackends } from './api-support.js';

process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
// The metrics emitter reads this when it is created: on, to see the EMF lines.
process.env.POWERTOOLS_METRICS_DISABLED = 'false';
delete process.env.POWERTOOLS_DEV;

const { handler: cleanup } = await import('../../functions/cleanup.js');
const { logger } = await import('../../functions/runtime/logger.js');
const { useStorage } = await import('../../functions/runtime/storage.js');

afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs `fn`, collecting the EMF documents written to stdout meanwhile. */
async function capturingEmf<T>(
  fn: () => Promise<T>,
): Promise<{ result: T | undefined; error: unknown; emf: Emf[] }> {
  const capture = captureEmf();
  let result: T | undefined;
  let error: unknown;
  try {
    result = await fn();
  } catch (caught) {
    error = caught;
  }
  return { result, error, emf: capture.stop() };
}

function metricNames(document: Emf): string[] {
  return document._aws.CloudWatchMetrics.flatMap((directive) =>
    directive.Metrics.map((metric) => metric.Name),
  );
}

/** Writes one item of every kind that expires, and waits until it has. */
async function writeExpiring(storage: Storage): Promise<void> {
  const ttl = 0.2;
  await storage.kv.set(`cleanup:${randomUUID()}`, { stale: true }, { ttl });
  await storage.sessions.create({ clusterId: `cleanup-${randomUUID()}`, ttl });
  await storage.tokens.issue({ identity: 'cleanup', scopes: ['kv:read'], ttl });
  const connectionId = `cleanup-${randomUUID()}`;
  await storage.connections.register({
    connectionId,
    identity: 'cleanup',
    tokenId: `t-${connectionId}`,
    scopes: ['admin'],
    resources: ['*'],
    ttl,
  });
  await storage.connections.subscribe(connectionId, 'cleanup-channel');
  // Past the expiry; nothing is asserted about how long anything takes.
  await new Promise((resolve) => setTimeout(resolve, 500));
}

await describeOnBackends(
  'cleanup',
  ({ backend, storage }) => {
    it('sweeps expired data, logs the rows per store, and emits CleanupRows and CleanupDurationMs', async () => {
      await writeExpiring(storage());
      const info = vi.spyOn(logger, 'info');

      const { result, error, emf } = await capturingEmf(() => cleanup({}, lambdaContext('cleanup')));

      expect(error).toBeUndefined();
      expect(result!.tokens).toBeGreaterThanOrEqual(1);
      expect(result!.connections).toBeGreaterThanOrEqual(1);
      // Redis expires kv keys and session records itself (the sweep only tidies indexes);
      // PostgreSQL rows wait for the sweep.
      if (backend.kind === 'postgresql') {
        expect(result!.kv).toBeGreaterThanOrEqual(1);
        expect(result!.sessions).toBeGreaterThanOrEqual(1);
      }
      const { total, closedConnections, consumerConnectionsEnded, durationMs, skipped, ...rows } = result!;
      expect(skipped).toBeUndefined();
      // No connection here was opened with an expiring token (ws.test.ts closes those).
      expect(closedConnections).toBe(0);
      expect(Object.keys(rows).sort()).toEqual([
        'audit',
        'connections',
        'events',
        'kv',
        'queues',
        'sessions',
        'tokens',
      ]);
      expect(total).toBe(Object.values(rows).reduce((a, b) => a + b, 0));
      expect(durationMs).toBeGreaterThanOrEqual(0);

      expect(info).toHaveBeenCalledWith('cleanup done', {
        rows,
        total,
        closedConnections,
        consumerConnectionsEnded,
        durationMs,
      });

      const totals = emf.find((document) => metricNames(document).includes('CleanupDurationMs'));
      expect(totals, JSON.stringify(emf)).toBeDefined();
      expect(totals!._aws.CloudWatchMetrics[0]!.Namespace).toBe('KubentlyStorage');
      expect(metricNames(totals!)).toEqual(
        expect.arrayContaining(['CleanupRows', 'CleanupDurationMs', 'ConnectionsClosed']),
      );
      expect(totals!.ConnectionsClosed).toBe(0);
      expect(totals!.CleanupRows).toBe(total);
      expect(totals!.CleanupDurationMs).toBe(durationMs);
      const perStore = emf.filter((document) => typeof document.Store === 'string');
      expect(Object.fromEntries(perStore.map((document) => [document.Store, document.CleanupRows]))).toEqual(
        rows,
      );
      for (const document of perStore) {
        expect(document._aws.CloudWatchMetrics[0]!.Dimensions[0]).toContain('Store');
      }

      // What was swept is gone: a second sweep finds nothing of it.
      const again = await capturingEmf(() => cleanup({}, lambdaContext('cleanup')));
      expect(again.result).toMatchObject({ kv: 0, sessions: 0, tokens: 0, connections: 0 });
      expect((await storage().connections.subscribers('cleanup-channel')).connectionIds).toEqual([]);
    });

    it('ends the consumers of a connection gone without a $disconnect and gives back what they held', async () => {
      const store = storage();
      const [gone, live] = [`cleanup-gone-${randomUUID()}`, `cleanup-live-${randomUUID()}`];
      for (const connectionId of [gone, live]) {
        await store.connections.register({
          connectionId,
          identity: 'cleanup',
          tokenId: `t-${connectionId}`,
          scopes: ['admin'],
          resources: ['*'],
          ttl: 600,
        });
      }
      const [goneQueue, liveQueue] = [`cleanup-q-${randomUUID()}`, `cleanup-q-${randomUUID()}`];
      await store.consumers.register(gone, goneQueue, { visibilityTimeout: 600 });
      await store.consumers.register(live, liveQueue);
      // The gone connection holds a delivery, as a push leaves it.
      const { id } = await store.queues.send(goneQueue, { n: 1 });
      const slot = await store.consumers.claim(goneQueue);
      const [leased] = await store.queues.receive(goneQueue, { visibilityTimeout: 600 });
      expect(leased?.id).toBe(id);
      expect(await store.consumers.bind(goneQueue, slot!.slot, leased!, 600)).toBe(true);
      // Forgotten by the connection registry (expired, or closed) with no $disconnect to end its consumers.
      await store.connections.remove(gone);

      const { result, error, emf } = await capturingEmf(() => cleanup({}, lambdaContext('cleanup')));

      expect(error).toBeUndefined();
      expect(result!.consumerConnectionsEnded).toBeGreaterThanOrEqual(1);
      expect(await store.consumers.list(goneQueue)).toEqual([]);
      expect(await store.consumers.connections()).not.toContain(gone);
      expect((await store.consumers.list(liveQueue)).map((c) => c.connectionId)).toEqual([live]);
      // Given back at once (a nack without delay), not at the end of its 600 s lease.
      const [again] = await store.queues.receive(goneQueue);
      expect(again).toMatchObject({ id, attempts: 2 });
      const totals = emf.find((document) => metricNames(document).includes('ConsumerConnectionsEnded'));
      expect(totals?.ConsumerConnectionsEnded).toBe(result!.consumerConnectionsEnded);
      await store.connections.remove(live);
    });
  },
  [redisBackend(), postgresBackend({ name: 'postgresql-pg', driver: 'pg' })],
);

it('a sweep that fails is logged, counted as CleanupFailures and rethrown for Lambda to see', async () => {
  const down = createStorage({
    backend: 'redis',
    redis: { url: 'redis://127.0.0.1:1', connectTimeout: 0.3, commandTimeout: 0.5, maxRetriesPerRequest: 0 },
  });
  useStorage(down);
  const errors = vi.spyOn(logger, 'error');
  try {
    const { error, emf } = await capturingEmf(() => cleanup({}, lambdaContext('cleanup')));
    expect(error).toMatchObject({ code: 'unavailable' });
    expect(errors).toHaveBeenCalledWith(
      'cleanup failed',
      expect.objectContaining({ durationMs: expect.any(Number) }),
    );
    const failure = emf.find((document) => metricNames(document).includes('CleanupFailures'));
    expect(failure?.CleanupFailures).toBe(1);
  } finally {
    await down.close();
  }
});

it('with ttl.enabled false the cleanup sweeps nothing and says so', async () => {
  const storage = createStorage({ backend: 'memory' });
  useStorage(storage, resolveConfig({ ttl: { enabled: false } }));
  const info = vi.spyOn(logger, 'info');
  try {
    await writeExpiring(storage);
    const { result, error } = await capturingEmf(() => cleanup({}, lambdaContext('cleanup')));
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ skipped: true, total: 0, tokens: 0, connections: 0 });
    expect(info).toHaveBeenCalledWith('cleanup skipped: ttl.enabled is false');
    // Still there for the sweep to take once enabled.
    expect((await storage.sweep()).tokens).toBeGreaterThanOrEqual(1);
  } finally {
    await storage.close();
  }
});
