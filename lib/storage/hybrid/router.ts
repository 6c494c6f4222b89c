/**
 * Routing: each data type to its primary backend, else (fallback on) to the next backend in
 * `fallback.order` whose breaker is closed. An outage on the way opens the backend's breaker.
 */
import { BackendUnavailableError } from '../../errors.js';
import type { Driver } from '../driver.js';
import type { Breaker } from './breaker.js';
import {
  deadlineOf,
  fallbacksOf,
  type HybridContext,
  isOutage,
  type Member,
  primaryOf,
  withDeadline,
} from './context.js';
import type { DataType } from './settings.js';

export interface Served<T> {
  value: T;
  served: Member;
  primary: Member;
}

export interface Router {
  /**
   * Runs `run` on the type's primary, else on its fallbacks; answers the result and who served
   * it. `waitMs` (a long poll's wait) is shared: each backend gets what is left of it.
   */
  serve<T>(
    type: DataType,
    op: string,
    run: (m: Member, waitMs: number) => Promise<T>,
    waitMs?: number,
  ): Promise<Served<T>>;
  read<T>(type: DataType, op: string, run: (d: Driver) => Promise<T>): Promise<T>;
  /**
   * A read of an item written before an outage, which only the primary has (without dual-write):
   * the fallback's miss is not an answer, so it is a BackendUnavailableError (503), never a
   * not-found (a valid token must not be a 401 because its backend is down).
   */
  readOwn<T>(type: DataType, op: string, run: (d: Driver) => Promise<T | undefined>): Promise<T | undefined>;
  /** Counts an operation `m` served, and its latency. */
  record(type: DataType, m: Member, route: 'primary' | 'fallback', op: string, started: number): void;
  /** Called by every operation: the first one asks for a reconcile (see `onFirstUse`). */
  touch(): void;
}

/**
 * `onFirstUse` runs on this process's first operation: a container that starts after another
 * one died mid-outage replays what that one journaled.
 */
export function createRouter(ctx: HybridContext, breaker: Breaker, onFirstUse: () => void): Router {
  const { settings, stats, emit } = ctx;
  let touched = false;

  function record(
    type: DataType,
    member: Member,
    route: 'primary' | 'fallback',
    op: string,
    started: number,
  ) {
    const key = `${type}:${member.name}:${route}`;
    stats.routing[key] = (stats.routing[key] ?? 0) + 1;
    emit('RoutingDecision', 1, 'Count', { dataType: type, backend: member.name, route });
    emit('BackendLatency', performance.now() - started, 'Milliseconds', {
      backend: member.name,
      operation: op,
    });
  }

  function touch(): void {
    if (touched) return;
    touched = true;
    onFirstUse();
  }

  async function serve<T>(
    type: DataType,
    op: string,
    run: (m: Member, waitMs: number) => Promise<T>,
    waitMs = 0,
  ): Promise<Served<T>> {
    touch();
    const primary = primaryOf(ctx, type);
    const candidates = [primary, ...fallbacksOf(ctx, primary)];
    const live = candidates.filter((m) => m.state === 'closed');
    // Every candidate open: try the primary anyway (the answer is an error either way).
    const order = live.length > 0 ? live : [primary];
    const begun = performance.now();
    let lastError: unknown;
    for (const member of order) {
      const started = performance.now();
      const left = Math.max(0, Math.round(waitMs - (started - begun)));
      try {
        const value = await withDeadline(run(member, left), deadlineOf(ctx, member) + left, member.name);
        member.warm = true;
        record(type, member, member === primary ? 'primary' : 'fallback', op, started);
        return { value, served: member, primary };
      } catch (error) {
        if (!isOutage(error)) throw error;
        lastError = error;
        breaker.open(member, error);
      }
    }
    throw lastError;
  }

  const read = async <T>(type: DataType, op: string, run: (d: Driver) => Promise<T>) =>
    (await serve(type, op, (m) => run(m.driver))).value;

  async function readOwn<T>(type: DataType, op: string, run: (d: Driver) => Promise<T | undefined>) {
    const { value, served, primary } = await serve(type, op, (m) => run(m.driver));
    if (value === undefined && served !== primary && !settings.sync.enabled) {
      throw new BackendUnavailableError(primary.name, 'unavailable; the fallback does not hold this item', {
        retryable: true,
      });
    }
    return value;
  }

  return { serve, read, readOwn, record, touch };
}
