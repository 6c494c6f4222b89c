import type { SessionDriver } from '../../driver.js';
import type { ClusterCache } from '../cluster-cache.js';
import type { StoreDeps } from './deps.js';

/** Sessions; every change invalidates its cluster's cached `isClusterActive` answer. */
export function hybridSessions(
  { router: { read, readOwn }, write }: StoreDeps,
  cache: ClusterCache,
): SessionDriver {
  return {
    async create(session) {
      const created = await write(
        'sessions',
        'sessions.create',
        (d) => d.sessions.create(session),
        (_d, s) => [{ t: 'session', id: s.sessionId, session: s }],
        { undo: (d, s) => d.sessions.end(s.sessionId), undoSafeUnderSync: true },
      );
      await cache.invalidate(created.clusterId);
      return created;
    },
    get: (id) => readOwn('sessions', 'sessions.get', (d) => d.sessions.get(id)),
    async keepAlive(id, ttlMs, times) {
      const kept = await write(
        'sessions',
        'sessions.keepAlive',
        (d) => d.sessions.keepAlive(id, ttlMs, times),
        (_d, s) => (s ? [{ t: 'session', id, session: s }] : []),
      );
      if (kept) await cache.invalidate(kept.clusterId);
      return kept;
    },
    async end(id) {
      const { ended, clusterId } = await write(
        'sessions',
        'sessions.end',
        async (d) => {
          // The cluster to invalidate; a session's cluster never changes.
          const before = cache.enabled ? await d.sessions.get(id) : undefined;
          return { ended: await d.sessions.end(id), clusterId: before?.clusterId };
        },
        () => [{ t: 'session', id, session: null }],
      );
      if (clusterId !== undefined) await cache.invalidate(clusterId);
      return ended;
    },
    byCluster: (clusterId) => read('sessions', 'sessions.byCluster', (d) => d.sessions.byCluster(clusterId)),
    byCorrelation: (correlationId) =>
      read('sessions', 'sessions.byCorrelation', (d) => d.sessions.byCorrelation(correlationId)),
    // Not cached: one list for all clusters, changed by every create and end anywhere.
    activeClusterPage: (after, limit, within) =>
      read('sessions', 'sessions.activeClusters', (d) => d.sessions.activeClusterPage(after, limit, within)),
    isClusterActive: (clusterId) => cache.isClusterActive(clusterId),
  };
}
