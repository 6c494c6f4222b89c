/**
 * The per-backend circuit breaker: an outage opens it (its data types go to the fallback), a
 * probe every `probeIntervalMs` pings the backend, and a backend that answers is `recovering`
 * until every journal holding its outage's writes has been replayed into it; then it closes.
 */
import { deadlineOf, type HybridContext, type Member, withDeadline } from './context.js';

/** What a probe that got an answer does, around closing the breaker (the reconciler's part). */
export interface Recovery {
  /**
   * Replays every journal holding entries for `m`; throws while one cannot be locked, read or
   * drained (the breaker then stays open).
   */
  replay(m: Member): Promise<unknown>;
  /** Runs once the breaker closed. */
  closed(m: Member): Promise<void>;
}

export interface Breaker {
  /** Opens `m`'s breaker after an outage (fallback on, not closed yet). */
  open(m: Member, error: unknown): void;
  /** Stops every probe (the driver closes). */
  stop(): void;
}

export function createBreaker(ctx: HybridContext, recovery: Recovery): Breaker {
  const { settings, stats, emit, lifecycle } = ctx;

  function open(member: Member, error: unknown): void {
    if (!ctx.fallbackOn || lifecycle.closed || member.state !== 'closed') return;
    member.state = 'open';
    member.openedAt = Date.now();
    stats.fallbackTriggers[member.name] = (stats.fallbackTriggers[member.name] ?? 0) + 1;
    // The reason is metadata: as a dimension, each message would be a metric series of its own.
    emit(
      'FallbackTriggered',
      1,
      'Count',
      { backend: member.name },
      { reason: error instanceof Error ? error.message.slice(0, 80) : 'unknown' },
    );
    scheduleProbe(member);
  }

  function scheduleProbe(m: Member): void {
    if (lifecycle.closed) return;
    m.probe = setTimeout(() => void probe(m), settings.probeIntervalMs);
    m.probe.unref();
  }

  async function probe(member: Member): Promise<void> {
    member.probe = undefined;
    if (lifecycle.closed) return;
    try {
      await withDeadline(member.driver.ping(), deadlineOf(ctx, member), member.name);
      member.warm = true;
      member.state = 'recovering';
      // Replay before closing: this process's later writes then land after the outage's.
      await recovery.replay(member);
      if (lifecycle.closed) return;
      member.state = 'closed';
      await recovery.closed(member);
      const outage = Date.now() - member.openedAt;
      stats.lastOutageMs[member.name] = outage;
      emit('BreakerClosed', outage, 'Milliseconds', { backend: member.name });
    } catch {
      if (member.state === 'recovering') member.state = 'open';
      scheduleProbe(member);
    }
  }

  return {
    open,
    stop() {
      for (const m of ctx.members.values()) if (m.probe) clearTimeout(m.probe);
    },
  };
}
