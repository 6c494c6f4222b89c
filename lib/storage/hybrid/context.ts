/**
 * What every part of the hybrid shares: the settings, the composed backends (each with its
 * breaker state), the counters and the metric sink, and whether the driver was closed. Each
 * module takes this context and owns the rest of its state itself.
 */
import { BackendUnavailableError } from '../../errors.js';
import { type MetricName, report, type StorageMetric } from '../../metrics.js';
import type { Driver } from '../driver.js';
import type { BackendName, DataType, HybridMetric, HybridSettings } from './settings.js';
import { type HybridStats, newStats } from './stats.js';

export type BreakerState = 'closed' | 'open' | 'recovering';

/** One composed backend and its breaker. */
export interface Member {
  name: BackendName;
  driver: Driver;
  state: BreakerState;
  openedAt: number;
  probe: NodeJS.Timeout | undefined;
  /** Whether it answered once in this process (until then connecting may take longer). */
  warm: boolean;
}

export type Emit = <N extends MetricName>(
  name: N,
  value: number,
  unit: HybridMetric['unit'],
  dimensions: StorageMetric<N>['dimensions'],
  metadata?: Record<string, string>,
) => void;

export interface HybridContext {
  readonly settings: HybridSettings;
  readonly members: ReadonlyMap<BackendName, Member>;
  /** Fallback is on and there is a backend to fall back to. */
  readonly fallbackOn: boolean;
  readonly stats: HybridStats;
  readonly emit: Emit;
  /** Set by `close`: timers stop re-arming and replays stop at their next entry. */
  readonly lifecycle: { closed: boolean };
}

export function createContext(
  settings: HybridSettings,
  factories: Record<BackendName, () => Driver>,
  used: Set<BackendName>,
): HybridContext {
  const members = new Map<BackendName, Member>();
  for (const name of used) {
    members.set(name, {
      name,
      driver: factories[name](),
      state: 'closed',
      openedAt: 0,
      probe: undefined,
      warm: false,
    });
  }
  return {
    settings,
    members,
    fallbackOn: settings.fallback.enabled && members.size > 1,
    stats: newStats(),
    emit: (name, value, unit, dimensions, metadata) =>
      report(settings.metrics, { name, value, unit, dimensions, ...(metadata ? { metadata } : {}) }),
    lifecycle: { closed: false },
  };
}

/** An operation's deadline on `m`: connecting to it (its first answer) gets longer. */
export function deadlineOf(ctx: HybridContext, m: Member): number {
  if (!ctx.fallbackOn) return Number.POSITIVE_INFINITY;
  return m.warm ? ctx.settings.operationTimeoutMs : ctx.settings.firstUseTimeoutMs;
}

/** The deadline of lock and journal operations: not on a request's path, they get the apply deadline. */
export function slowDeadlineOf(ctx: HybridContext, m: Member): number {
  return Math.max(deadlineOf(ctx, m), ctx.settings.operationTimeoutMs * 10);
}

export function memberOf(ctx: HybridContext, name: BackendName): Member {
  const member = ctx.members.get(name);
  if (!member) throw new BackendUnavailableError('hybrid', `${name} is not configured`, { retryable: false });
  return member;
}

export const primaryOf = (ctx: HybridContext, type: DataType): Member =>
  memberOf(ctx, ctx.settings.routing[type]);

export function fallbacksOf(ctx: HybridContext, primary: Member): Member[] {
  if (!ctx.fallbackOn) return [];
  return ctx.settings.fallback.order
    .filter((name) => name !== primary.name && ctx.members.has(name))
    .map((name) => memberOf(ctx, name));
}

export const otherOf = (ctx: HybridContext, m: Member): Member | undefined =>
  [...ctx.members.values()].find((o) => o !== m);

export function isOutage(error: unknown): boolean {
  return error instanceof BackendUnavailableError && error.retryable;
}

export function withDeadline<T>(promise: Promise<T>, ms: number, backend: string): Promise<T> {
  if (!Number.isFinite(ms)) return promise;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BackendUnavailableError(backend, `no answer within ${ms} ms`, { retryable: true })),
      ms,
    );
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
