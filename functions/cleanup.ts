/**
 * The scheduled sweep: closes WebSocket connections whose token has expired (up to
 * `ttl.batchSize` per run, found by index; functions/runtime/ws-close.ts), removes expired data in
 * batches (`storage.sweep()`), logs the rows deleted per store and how long it took, and emits
 * them as CloudWatch metrics in Embedded Metric Format (namespace `KubentlyStorage`, see
 * lib/metrics.ts; on any backend, EMF is only a log line). Reads never depend on the sweep: it
 * only keeps tables and key spaces small.
 *
 * Consumers of connections that no longer exist (gone without a `$disconnect`) are ended, up to
 * `ttl.batchSize` per run, and what they held given back (`ConsumerConnectionsEnded`).
 *
 * Then each queue with WebSocket consumers is pushed (functions/runtime/push.ts): delayed messages
 * that came due and leases that ended since are delivered by this schedule at the latest.
 *
 * A sweep that fails is logged, counted (`CleanupFailures`) and rethrown, so Lambda's error
 * metrics and alarms see it; the next schedule tries again. A hybrid's journals are sampled
 * (`JournalDepth`) after each sweep.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import type { SweepReport } from '../lib/storage/types.js';
import { logger } from './runtime/logger.js';
import { emitMetric, emitTogether } from './runtime/metrics.js';
import { runtime } from './runtime/middleware.js';
import { endConsumersOfGoneConnections, pushQueue } from './runtime/push.js';
import { getHybridControl, getStorage, getStorageConfig } from './runtime/storage.js';
import { closeConnectionsWithExpiredToken } from './runtime/ws-close.js';

export type CleanupResult = Omit<SweepReport, 'durationMs'> & {
  total: number;
  /** WebSocket connections closed because their token expired. */
  closedConnections: number;
  /** Connections gone without a `$disconnect` whose queue consumers were ended. */
  consumerConnectionsEnded: number;
  durationMs: number;
  skipped?: true;
};

const EMPTY: Omit<SweepReport, 'durationMs'> = {
  kv: 0,
  sessions: 0,
  queues: 0,
  events: 0,
  tokens: 0,
  audit: 0,
  connections: 0,
};

const cleanup = async (): Promise<CleanupResult> => {
  const config = getStorageConfig();
  if (!config.ttl.enabled) {
    // The schedule is removed at deploy when ttl.enabled is false; this covers a config changed since.
    logger.info('cleanup skipped: ttl.enabled is false');
    return {
      ...EMPTY,
      total: 0,
      closedConnections: 0,
      consumerConnectionsEnded: 0,
      durationMs: 0,
      skipped: true,
    };
  }
  const started = performance.now();
  let report: SweepReport;
  let closedConnections: number;
  let consumerConnectionsEnded: number;
  try {
    const storage = getStorage();
    // Before the sweep, which leaves live registrations alone: these are live, their token is not.
    const closed = await closeConnectionsWithExpiredToken(storage, config.ttl.batchSize);
    closedConnections = closed.connections;
    if (closed.connections > 0) logger.info('connections with an expired token closed', { ...closed });
    report = await storage.sweep();
    // After the sweep and the closes: their connections are gone now, their consumers with them.
    consumerConnectionsEnded = await endConsumersOfGoneConnections(storage, config.ttl.batchSize);
    // Delayed messages now due and leases that ended reach the queues' WebSocket consumers.
    for (const queue of await storage.consumers.queues()) await pushQueue(storage, queue);
  } catch (error) {
    const durationMs = Math.round(performance.now() - started);
    logger.error('cleanup failed', { durationMs, error });
    emitTogether([
      { name: 'CleanupFailures', value: 1, unit: 'Count' },
      { name: 'CleanupDurationMs', value: durationMs, unit: 'Milliseconds' },
    ]);
    throw error;
  }
  const durationMs = Math.round(performance.now() - started);
  // A hybrid's journals are sampled on this schedule (JournalDepth), whether or not writes arrive.
  const journals = await getHybridControl()?.journalDepth();
  if (journals) logger.info('hybrid journals', { waiting: journals });
  const { durationMs: _sweepMs, ...rows } = report;
  const total = Object.values(rows).reduce((sum, count) => sum + count, 0);
  logger.info('cleanup done', { rows, total, closedConnections, consumerConnectionsEnded, durationMs });

  // One metric per store (dimension `Store`) and the totals.
  for (const [store, count] of Object.entries(rows)) {
    emitMetric({ name: 'CleanupRows', value: count, unit: 'Count', dimensions: { Store: store } });
  }
  emitTogether([
    { name: 'CleanupRows', value: total, unit: 'Count' },
    { name: 'ConnectionsClosed', value: closedConnections, unit: 'Count' },
    { name: 'ConsumerConnectionsEnded', value: consumerConnectionsEnded, unit: 'Count' },
    { name: 'CleanupDurationMs', value: durationMs, unit: 'Milliseconds' },
  ]);
  return { ...rows, total, closedConnections, consumerConnectionsEnded, durationMs };
};

// Not an API Gateway event: the Lambda context is all there is to log with (no correlation id).
const logging = injectLambdaContext(logger, { resetKeys: true }) as MiddlewareObj<unknown, CleanupResult>;

export const handler = middy(cleanup).use(runtime<unknown, CleanupResult>('cleanup')).use(logging);
