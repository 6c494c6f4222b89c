/**
 * The `isClusterActive` read-through cache: Redis in front of sessions on PostgreSQL. Cached
 * answers carry the generation they were computed under; a session change writes a fresh
 * generation, so an answer from before it is ignored.
 */
import { randomUUID } from 'node:crypto';
import type { Breaker } from './breaker.js';
import { type HybridContext, isOutage, type Member, primaryOf, withDeadline } from './context.js';
import type { Router } from './router.js';

const CACHE_KEY = '__kst_hybrid:active:';
const GEN_KEY = '__kst_hybrid:gen:';

/** A cached answer: the generation it was computed under, active or not, valid until. */
interface CachedAnswer {
  g: string;
  a: boolean;
  u: number;
}

export interface ClusterCache {
  /** Whether the cache is on (sessions on PostgreSQL, Redis in use, `cache.enabled`). */
  readonly enabled: boolean;
  /** Makes every cached answer for `clusterId` stale (best effort; a failure suspends the cache here). */
  invalidate(clusterId: string): Promise<void>;
  isClusterActive(clusterId: string): Promise<boolean>;
}

export function createClusterCache(
  ctx: HybridContext,
  deps: { router: Router; breaker: Breaker },
): ClusterCache {
  const { settings, stats, emit } = ctx;
  const { router, breaker } = deps;
  const redis: Member | undefined = ctx.members.get('redis');
  const enabled = settings.cache.enabled && settings.routing.sessions === 'postgresql' && redis !== undefined;
  /** Until when this process bypasses the cache because an invalidation could not be written. */
  let suspectUntil = 0;

  const usable = (redis: Member | undefined): redis is Member =>
    enabled &&
    redis?.state === 'closed' &&
    primaryOf(ctx, 'sessions').state === 'closed' &&
    Date.now() >= suspectUntil;

  /**
   * Invalidation writes a fresh generation (a random token, never an increment that could
   * repeat after the key expires).
   */
  async function invalidate(clusterId: string): Promise<void> {
    if (!enabled || redis === undefined) return;
    try {
      const ttlMs = Math.max(settings.cache.ttlMs * 10, 60_000);
      await withDeadline(
        redis.driver.kv.set(GEN_KEY + clusterId, JSON.stringify(randomUUID()), { ttlMs }, undefined),
        settings.operationTimeoutMs,
        'redis',
      );
      stats.cache.invalidations++;
    } catch (error) {
      stats.cache.invalidationFailures++;
      emit('CacheInvalidationFailure', 1, 'Count', { backend: 'redis' });
      // This process stops trusting the cache for as long as an entry can live.
      suspectUntil = Date.now() + settings.cache.ttlMs;
      if (isOutage(error)) breaker.open(redis, error);
    }
  }

  /** The cached answer, when there is a fresh one; `generation` is the one read (to cache under). */
  async function lookUp(
    redis: Member,
    clusterId: string,
  ): Promise<{ active?: boolean; generation?: string }> {
    const started = performance.now();
    try {
      const [cached, gen] = await withDeadline(
        redis.driver.kv.getMany([CACHE_KEY + clusterId, GEN_KEY + clusterId]),
        settings.operationTimeoutMs,
        'redis',
      );
      const generation = typeof gen === 'string' ? gen : '-';
      const answer =
        typeof cached === 'object' && cached !== null && !Array.isArray(cached) ? cached : undefined;
      if (answer && answer.g === generation && typeof answer.u === 'number' && answer.u > Date.now()) {
        stats.cache.hits++;
        emit('CacheHit', 1, 'Count', { cache: 'isClusterActive' });
        emit('BackendLatency', performance.now() - started, 'Milliseconds', {
          backend: 'redis',
          operation: 'sessions.isClusterActive.cached',
        });
        return { active: answer.a === true, generation };
      }
      return { generation };
    } catch (error) {
      if (isOutage(error)) breaker.open(redis, error);
      return {};
    }
  }

  async function isClusterActive(clusterId: string): Promise<boolean> {
    if (!usable(redis)) {
      return router.read('sessions', 'sessions.isClusterActive', (d) =>
        d.sessions.isClusterActive(clusterId),
      );
    }
    const { active: cached, generation } = await lookUp(redis, clusterId);
    if (cached !== undefined) return cached;
    stats.cache.misses++;
    emit('CacheMiss', 1, 'Count', { cache: 'isClusterActive' });
    const {
      value: live,
      served,
      primary,
    } = await router.serve('sessions', 'sessions.byCluster', (m) => m.driver.sessions.byCluster(clusterId));
    const active = live.length > 0;
    const now = Date.now();
    // A positive answer lives no longer than the cluster's last live session.
    const until = active
      ? Math.min(now + settings.cache.ttlMs, Math.max(...live.map((s) => Date.parse(s.expiresAt))))
      : now + settings.cache.negativeTtlMs;
    if (generation !== undefined && served === primary && until > now && usable(redis)) {
      const value = JSON.stringify({ g: generation, a: active, u: until } satisfies CachedAnswer);
      await withDeadline(
        redis.driver.kv.set(CACHE_KEY + clusterId, value, { ttlMs: until - now }, undefined),
        settings.operationTimeoutMs,
        'redis',
      ).catch(() => {});
    }
    return active;
  }

  return { enabled, invalidate, isClusterActive };
}
