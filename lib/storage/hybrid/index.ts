/**
 * The hybrid backend: a routing table over the other backends' drivers (composition, like
 * unstorage's overlay driver), not a third implementation. Each data type goes to its
 * backend (`hybrid.routing`); with `hybrid.fallback.enabled` a per-backend circuit breaker
 * sends a failing backend's data types to the next backend in `fallback.order`, journals what
 * it wrote there (durably, in that backend) and replays it when the primary answers its health
 * probe again; with `hybrid.sync.enabled` / `migration.dualWrite` writes are mirrored to the
 * other backend. Sessions on PostgreSQL get a read-through Redis cache for `isClusterActive`.
 *
 * Semantics (what reads see during an outage, ordering, duplicates) are in docs/hybrid.md.
 */

import { randomUUID } from 'node:crypto';
import { BackendUnavailableError } from '../../errors.js';
import { type MetricName, report, type StorageMetric } from '../../metrics.js';
import type {
  AuditDriver,
  ConnectionDriver,
  Driver,
  EventDriver,
  Expiry,
  KvDriver,
  QueueDriver,
  SessionDriver,
  TokenDriver,
} from '../driver.js';
import type { HealthCheck, HealthReport, KvEntry, SweepReport } from '../types.js';
import { consumersOn } from './consumers.js';
import {
  applyEntry,
  cleanSource,
  currentState,
  holdsValue,
  JOURNAL_QUEUE,
  JOURNAL_QUEUES,
  type JournalEntry,
  type JournalRecord,
  journalQueueOf,
} from './journal.js';
import {
  type BackendName,
  DATA_TYPES,
  type DataType,
  type HybridMetric,
  type HybridSettings,
} from './settings.js';

export { emfSink } from './metrics.js';
export type { BackendName, DataType, HybridMetric, HybridOptions, HybridSettings } from './settings.js';
export { backendsInUse, hybridSettings } from './settings.js';

type BreakerState = 'closed' | 'open' | 'recovering';

interface Member {
  name: BackendName;
  driver: Driver;
  state: BreakerState;
  openedAt: number;
  probe: NodeJS.Timeout | undefined;
  /** Whether it answered once in this process (until then connecting may take longer). */
  warm: boolean;
}

/** Counters the functions layer can publish (they are also sent to `metrics` as they change). */
export interface HybridStats {
  /** `dataType:backend:primary|fallback` → operations routed so. */
  routing: Record<string, number>;
  fallbackTriggers: Partial<Record<BackendName, number>>;
  breakers: Partial<Record<BackendName, BreakerState>>;
  /** The last outage of each backend: ms from its breaker opening to its reconciled close. */
  lastOutageMs: Partial<Record<BackendName, number>>;
  cache: {
    hits: number;
    misses: number;
    hitRatio: number;
    invalidations: number;
    invalidationFailures: number;
  };
  sync: {
    writes: number;
    retries: number;
    failures: number;
    journaled: number;
    pending: number;
    lastLagMs: number;
    maxLagMs: number;
  };
  /** `skipped`: entries acked without a write (superseded later in their batch, or a queue already moved). */
  reconcile: { runs: number; applied: number; skipped: number; pending: number; errors: number };
  /** Direct writes journaled behind entries that still waited for their backend (see `write`). */
  ordered: number;
}

export interface HybridControl {
  readonly settings: HybridSettings;
  stats(): HybridStats;
  /** Replays every journal whose target answers; answers how many entries were applied. */
  reconcile(): Promise<number>;
  /** Waits for asynchronous dual-writes still running. */
  flush(): Promise<void>;
  /**
   * Entries waiting for replay in each backend's journal (leased and dead ones included), also
   * reported as `JournalDepth`; a backend whose journal cannot be read now is left out.
   */
  journalDepth(): Promise<Partial<Record<BackendName, number>>>;
  health(): Promise<HealthReport>;
  /** The composed drivers (for tests and tools). */
  readonly drivers: Partial<Record<BackendName, Driver>>;
}

export interface HybridDriver extends Driver {
  readonly control: HybridControl;
}

const TAG_SEPARATOR = '~';
const TAGS: Record<BackendName, string> = { redis: 'r', postgresql: 'p' };
const CACHE_KEY = '__kst_hybrid:active:';
const GEN_KEY = '__kst_hybrid:gen:';

/**
 * The lock of a backend's journal (in its kv, through its own driver). Its value is a token
 * unique to one acquisition; the holder checks it before every entry it applies and renews it
 * only while it is still its own, with more than the apply deadline left (`settings.journalLockMs`).
 */
const JOURNAL_LOCK = '__kst_hybrid:journal-lock';
/** The journal is held by another reconciler (or this one lost it), or it cannot be read. */
class JournalBusy extends Error {}

/** One acquisition of a journal lock: its token, and what the holder last read of its expiry. */
interface Owner {
  token: string;
  /** Until then no other reconciler can have taken the lock (no read needed before an entry). */
  safeUntil: number;
  /** The lock's expiry as last read or renewed (a lower bound). */
  expiresAt: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The item an entry changes: mirrors of one item are applied in order. */
function itemOf(entry: JournalEntry): string {
  switch (entry.t) {
    case 'kv':
      return `kv:${entry.key}`;
    case 'session':
      return `session:${entry.id}`;
    case 'token':
      return `token:${entry.token.id}`;
    case 'revoke':
      return `token:${entry.id}`;
    case 'conn':
      return `conn:${entry.id}`;
    case 'queue':
      return `queue:${entry.queue}`;
    case 'event':
      return `event:${entry.channel}`;
    case 'audit':
      return `audit:${entry.entry.id}`;
  }
}

function isOutage(error: unknown): boolean {
  return error instanceof BackendUnavailableError && error.retryable;
}

function withDeadline<T>(promise: Promise<T>, ms: number, backend: string): Promise<T> {
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

export function createHybridDriver(
  settings: HybridSettings,
  factories: Record<BackendName, () => Driver>,
  used: Set<BackendName>,
): HybridDriver {
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
  const fallbackOn = settings.fallback.enabled && members.size > 1;
  /** An operation's deadline on `m`: connecting to it (its first answer) gets longer. */
  const deadlineOf = (m: Member): number =>
    !fallbackOn
      ? Number.POSITIVE_INFINITY
      : m.warm
        ? settings.operationTimeoutMs
        : settings.firstUseTimeoutMs;
  /** A journal entry a reconciler holds: at most as long as the lock (see `drainJournal`). */
  const journalLeaseMs = settings.journalLockMs;
  /**
   * How close to its expiry a journal lock is no longer renewed (the renewal might land after
   * another reconciler took it), and how long before it a batch's lease ends.
   */
  const lockMarginMs = Math.min(settings.operationTimeoutMs * 10, settings.journalLockMs / 4);
  const redis = members.get('redis');
  const cacheOn = settings.cache.enabled && settings.routing.sessions === 'postgresql' && redis !== undefined;

  const stats: HybridStats = {
    routing: {},
    fallbackTriggers: {},
    breakers: {},
    lastOutageMs: {},
    cache: { hits: 0, misses: 0, hitRatio: 0, invalidations: 0, invalidationFailures: 0 },
    sync: { writes: 0, retries: 0, failures: 0, journaled: 0, pending: 0, lastLagMs: 0, maxLagMs: 0 },
    reconcile: { runs: 0, applied: 0, skipped: 0, pending: 0, errors: 0 },
    ordered: 0,
  };
  const emit = <N extends MetricName>(
    name: N,
    value: number,
    unit: HybridMetric['unit'],
    dimensions: StorageMetric<N>['dimensions'],
    metadata?: Record<string, string>,
  ) => report(settings.metrics, { name, value, unit, dimensions, ...(metadata ? { metadata } : {}) });

  let closed = false;
  let touched = false;
  const pendingMirrors = new Set<Promise<void>>();
  /** The latest asynchronous mirror of each item (see `itemOf`). */
  const mirrorTails = new Map<string, Promise<void>>();
  /**
   * Journal locks this process took and could not release (their backend went down mid-pass):
   * source backend → the lock's token. That pass is over, so when the lock is still its token
   * this process may take it back instead of waiting out its expiry (`journalLockMs`, 30 s)
   * after the backend is back — a restarted Redis with AOF keeps the key.
   */
  const orphanedLocks = new Map<BackendName, string>();
  let reconciling: Promise<number> | undefined;
  /** Replays run by probes (awaited by `close`, so their locks are released). */
  const probing = new Set<Promise<unknown>>();
  /** Removals of fallback copies whose entries reached the primary (run once its breaker closed). */
  const cleanups = new Map<BackendName, (() => Promise<void>)[]>();
  const cleanupsOf = (target: BackendName) => {
    const list = cleanups.get(target) ?? [];
    cleanups.set(target, list);
    return list;
  };
  let followUp: NodeJS.Timeout | undefined;
  let followUpAt = 0;
  /** When reconciles were asked for (see `scheduleReconcile`). */
  const wanted = new Set<number>();
  /** Until when this process bypasses the cache because an invalidation could not be written. */
  let cacheSuspectUntil = 0;
  /** Per backend: until when no other backend's journal is known to hold entries for it. */
  const journalClean = new Map<BackendName, number>();
  /** Bumped whenever this process journals: a check begun before that does not count as clean. */
  let journalEpoch = 0;
  /** Per backend: until when its journal is not looked at again after a look failed. */
  const lookFailedUntil = new Map<BackendName, number>();
  /** Per journal (`source|queue`): how many entries a replay batch takes (see `drainJournal`). */
  const batchSizes = new Map<string, number>();

  const member = (name: BackendName): Member => {
    const m = members.get(name);
    if (!m) throw new BackendUnavailableError('hybrid', `${name} is not configured`, { retryable: false });
    return m;
  };
  const primaryOf = (type: DataType) => member(settings.routing[type]);
  const fallbacksOf = (primary: Member): Member[] =>
    fallbackOn
      ? settings.fallback.order
          .filter((name) => name !== primary.name && members.has(name))
          .map((name) => member(name))
      : [];
  const otherOf = (m: Member): Member | undefined => [...members.values()].find((o) => o !== m);

  // -------------------------------------------------------------------------------------
  // the breaker

  function open(m: Member, error: unknown): void {
    if (!fallbackOn || closed || m.state !== 'closed') return;
    m.state = 'open';
    m.openedAt = Date.now();
    stats.fallbackTriggers[m.name] = (stats.fallbackTriggers[m.name] ?? 0) + 1;
    // The reason is metadata: as a dimension, each message would be a metric series of its own.
    emit(
      'FallbackTriggered',
      1,
      'Count',
      { backend: m.name },
      { reason: error instanceof Error ? error.message.slice(0, 80) : 'unknown' },
    );
    scheduleProbe(m);
  }

  function scheduleProbe(m: Member): void {
    if (closed) return;
    m.probe = setTimeout(() => void probe(m), settings.probeIntervalMs);
    m.probe.unref();
  }

  async function probe(m: Member): Promise<void> {
    m.probe = undefined;
    if (closed) return;
    try {
      await withDeadline(m.driver.ping(), deadlineOf(m), m.name);
      m.warm = true;
      m.state = 'recovering';
      // Replay before closing: this process's later writes then land after the outage's. A
      // source journal that cannot be locked or read throws: the breaker stays open until every
      // journal is known drained.
      const replay = reconcileInto(m);
      probing.add(replay);
      try {
        await replay;
      } finally {
        probing.delete(replay);
      }
      if (closed) return;
      m.state = 'closed';
      await runCleanups(m);
      const outage = Date.now() - m.openedAt;
      stats.lastOutageMs[m.name] = outage;
      emit('BreakerClosed', outage, 'Milliseconds', { backend: m.name });
      // Writes that reached the fallback while this replay ran are caught by a second pass.
      scheduleReconcile(settings.probeIntervalMs);
    } catch {
      if (m.state === 'recovering') m.state = 'open';
      scheduleProbe(m);
    }
  }

  // -------------------------------------------------------------------------------------
  // routing

  function record(type: DataType, m: Member, route: 'primary' | 'fallback', op: string, started: number) {
    const key = `${type}:${m.name}:${route}`;
    stats.routing[key] = (stats.routing[key] ?? 0) + 1;
    emit('RoutingDecision', 1, 'Count', { dataType: type, backend: m.name, route });
    emit('BackendLatency', performance.now() - started, 'Milliseconds', { backend: m.name, operation: op });
  }

  function touch(): void {
    if (touched) return;
    touched = true;
    // A container that starts after another one died mid-outage replays what that one journaled.
    if (fallbackOn || settings.sync.enabled) scheduleReconcile(0);
  }

  /**
   * Runs `run` on the type's primary, else on its fallbacks; answers the result and who served
   * it. `waitMs` (a long poll's wait) is shared: each backend gets what is left of it.
   */
  async function serve<T>(
    type: DataType,
    op: string,
    run: (m: Member, waitMs: number) => Promise<T>,
    waitMs = 0,
  ): Promise<{ value: T; served: Member; primary: Member }> {
    touch();
    const primary = primaryOf(type);
    const candidates = [primary, ...fallbacksOf(primary)];
    const live = candidates.filter((m) => m.state === 'closed');
    // Every candidate open: try the primary anyway (the answer is an error either way).
    const order = live.length > 0 ? live : [primary];
    const begun = performance.now();
    let lastError: unknown;
    for (const m of order) {
      const started = performance.now();
      const left = Math.max(0, Math.round(waitMs - (started - begun)));
      try {
        const value = await withDeadline(run(m, left), deadlineOf(m) + left, m.name);
        m.warm = true;
        record(type, m, m === primary ? 'primary' : 'fallback', op, started);
        return { value, served: m, primary };
      } catch (error) {
        if (!isOutage(error)) throw error;
        lastError = error;
        open(m, error);
      }
    }
    throw lastError;
  }

  const read = async <T>(type: DataType, op: string, run: (d: Driver) => Promise<T>) =>
    (await serve(type, op, (m) => run(m.driver))).value;

  /**
   * A read of an item written before an outage, which only the primary has (without dual-write):
   * the fallback's miss is not an answer, so it is a BackendUnavailableError (503), never a
   * not-found (a valid token must not be a 401 because its backend is down).
   */
  async function readOwn<T>(type: DataType, op: string, run: (d: Driver) => Promise<T | undefined>) {
    const { value, served, primary } = await serve(type, op, (m) => run(m.driver));
    if (value === undefined && served !== primary && !settings.sync.enabled) {
      throw new BackendUnavailableError(primary.name, 'unavailable; the fallback does not hold this item', {
        retryable: true,
      });
    }
    return value;
  }

  interface WriteOptions<T> {
    /** Mirrored to the other backend under dual-write (default true). */
    mirror?: boolean;
    /**
     * A state write (its entry says what the item now is; default true): while another
     * backend's journal still holds entries for the primary, a write the primary took directly
     * is journaled behind them, so their replay cannot undo it.
     */
    ordered?: boolean;
    /**
     * Entries that do not depend on the write's result (a queue to move): journaled on the
     * fallback *before* it takes the write, so no write there is ever left unjournaled.
     */
    journalFirst?: JournalEntry[];
    /**
     * Takes a fallback write back when its journal entry could not be written (it fails);
     * `before` is what `before()` read on the fallback just before the write.
     */
    undo?: (d: Driver, result: T, before: unknown) => Promise<unknown>;
    /** Read on the fallback just before it takes the write (outages only), for `undo`. */
    before?: (d: Driver) => Promise<unknown>;
    /**
     * `undo` restores the fallback's earlier state or removes only what this write created, so it
     * is safe under dual-write too; otherwise it is skipped there (the fallback's copy may be the
     * mirror of an acknowledged write).
     */
    undoSafeUnderSync?: boolean;
  }

  /**
   * A write. `snapshot` says what the write left behind (computed only when needed): journaled
   * durably in the fallback when the fallback served it, journaled behind waiting entries (see
   * `ordered`), mirrored to the other backend when dual-write is on.
   */
  async function write<T>(
    type: DataType,
    op: string,
    run: (d: Driver) => Promise<T>,
    snapshot: (d: Driver, result: T) => Promise<JournalEntry[]> | JournalEntry[],
    options: WriteOptions<T> = {},
  ): Promise<T> {
    const { mirror = true, ordered = true, journalFirst, undo, before, undoSafeUnderSync = false } = options;
    const target = primaryOf(type);
    // Looked at *before* the write, whenever the primary will be tried (its breaker is closed,
    // or every candidate's is open): an entry acknowledged before this call is then either still
    // in the journal (waiting or leased) or already applied, never in flight past this write.
    const direct =
      target.state === 'closed' || [target, ...fallbacksOf(target)].every((m) => m.state !== 'closed');
    const waiting = ordered && fallbackOn && direct ? await waitingJournals(target) : [];
    let prior: unknown;
    const { value, served, primary } = await serve(type, op, async (m) => {
      // Before the fallback takes it (a crash after the send leaves the message journaled)…
      if (journalFirst && m !== target) await journal(m, target.name, journalFirst, 'fallback');
      if (before && undo && m !== target) prior = await before(m.driver);
      return run(m.driver);
    });
    if (served !== primary) {
      // …and after it (a replay that ran between the two found the queue still empty).
      const entries = journalFirst ?? (await snapshot(served.driver, value));
      try {
        // Journaled before answering: an acknowledged write is always on the way to the primary.
        await journal(served, primary.name, entries, 'fallback');
      } catch (error) {
        if (isOutage(error)) open(served, error);
        // Not acknowledged, so not left on the fallback either (best effort).
        if (undo && (undoSafeUnderSync || !settings.sync.enabled)) {
          await withDeadline(undo(served.driver, value, prior), deadlineOf(served), served.name).catch(
            () => {},
          );
        }
        throw error;
      }
      return value;
    }
    const to = settings.sync.enabled && mirror ? otherOf(primary) : undefined;
    if (waiting.length === 0 && !to) return value;
    const entries = await snapshot(primary.driver, value);
    if (waiting.length > 0) {
      // Behind the entries that wait (the primary already holds it: a failure here fails the
      // write rather than acknowledging one a replay may undo).
      for (const source of waiting) {
        await journal(source, primary.name, entries, 'ordered').catch((error: unknown) => {
          if (isOutage(error)) open(source, error);
          throw error;
        });
      }
      stats.ordered++;
      emit('JournaledBehind', 1, 'Count', { backend: primary.name });
      scheduleReconcile(0);
    }
    if (to) await dualWrite(primary, to, entries);
    return value;
  }

  /**
   * The other backends whose state journal holds entries for `target` (waiting or being
   * replayed; entries requeued with a delay do not count). A clean answer is trusted for
   * `journalCheckMs`; a journal that cannot be read counts as empty and is not looked at again
   * before the next probe interval (its backend cannot take new entries while it does not
   * answer). A backend whose breaker is open is still looked at, briefly (its breaker may have
   * opened on one failed append while it holds entries).
   */
  async function waitingJournals(target: Member): Promise<Member[]> {
    const now = Date.now();
    if (now < (journalClean.get(target.name) ?? 0)) return [];
    const epoch = journalEpoch;
    let known = true;
    const found = await Promise.all(
      [...members.values()]
        .filter((source) => source !== target)
        .map(async (source) => {
          // A look that failed is not repeated before the source's next probe: a source that
          // hangs costs one short look per probe interval, not one per write.
          // A source believed up whose journal could not be read counts as waiting: the write is
          // journaled behind whatever it holds (if that append fails, so does the write).
          const unknown = () => {
            known = false;
            return source.state === 'closed' ? source : undefined;
          };
          if (now < (lookFailedUntil.get(source.name) ?? 0)) return unknown();
          // Bounded like an operation, never the first-use deadline; shorter while its breaker is open.
          const deadline =
            source.state === 'closed'
              ? settings.operationTimeoutMs
              : Math.max(50, settings.operationTimeoutMs / 5);
          try {
            const left = await withDeadline(source.driver.queues.stats(JOURNAL_QUEUE), deadline, source.name);
            source.warm = true;
            lookFailedUntil.delete(source.name);
            // Dead entries count: a later redrive replays them.
            return left.depth - left.delayed + left.inFlight + left.dead > 0 ? source : undefined;
          } catch {
            lookFailedUntil.set(source.name, Date.now() + settings.probeIntervalMs);
            return unknown();
          }
        }),
    );
    const waiting = found.filter((m): m is Member => m !== undefined);
    if (waiting.length === 0 && known && epoch === journalEpoch && settings.journalCheckMs > 0) {
      journalClean.set(target.name, now + settings.journalCheckMs);
    }
    return waiting;
  }

  /**
   * Appends `entries` for `target` to `on`'s journal, each with a dedup id of its own so that a
   * retried append (up to 3 attempts, outages only) never doubles an entry.
   */
  async function journal(
    on: Member,
    target: BackendName,
    entries: JournalEntry[],
    kind: JournalRecord['kind'] = 'fallback',
  ): Promise<void> {
    if (entries.length === 0) return;
    if (entries.some((entry) => journalQueueOf(entry) === JOURNAL_QUEUE)) {
      journalClean.delete(target);
      journalEpoch++;
    }
    for (const entry of entries) {
      const record: JournalRecord = { v: 1, target, kind, entry };
      const text = JSON.stringify(record);
      const dedupId = `kst-journal:${randomUUID()}`;
      const queue = journalQueueOf(entry);
      for (let attempt = 1; ; attempt++) {
        try {
          await withDeadline(on.driver.queues.send(queue, text, 0, dedupId), deadlineOf(on), on.name);
          break;
        } catch (error) {
          if (!isOutage(error) || attempt >= 3) throw error;
          await sleep(25 * attempt);
        }
      }
    }
  }

  // -------------------------------------------------------------------------------------
  // dual-write

  async function dualWrite(from: Member, to: Member, entries: JournalEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const ackedAt = performance.now();
    const job = async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          // A secondary known to be down is not hammered: its share goes straight to the journal.
          if (to.state !== 'closed') throw new BackendUnavailableError(to.name, 'breaker open');
          for (const entry of entries) {
            const outcome = await withDeadline(
              applyEntry(entry, to.driver, from.driver),
              settings.operationTimeoutMs,
              to.name,
            );
            // A token whose issuer's own mirror has not landed yet: retried, then journaled.
            if (outcome === 'pending') throw new Error(`${itemOf(entry)} waits for an earlier mirror`);
          }
          const lag = performance.now() - ackedAt;
          stats.sync.writes++;
          stats.sync.lastLagMs = lag;
          stats.sync.maxLagMs = Math.max(stats.sync.maxLagMs, lag);
          emit('SyncLag', lag, 'Milliseconds', { from: from.name, to: to.name });
          return;
        } catch (error) {
          if (isOutage(error)) open(to, error);
          if (attempt >= settings.syncAttempts || to.state !== 'closed') {
            stats.sync.failures++;
            emit('SyncFailure', 1, 'Count', { from: from.name, to: to.name });
            try {
              // Durable: replayed into the secondary by a later reconcile.
              await journal(from, to.name, entries, 'mirror');
              stats.sync.journaled += entries.length;
              // A secondary that answers again but whose breaker never opened (a refusal, not an
              // outage) gets its journal replayed after migration.syncInterval.
              scheduleReconcile(settings.syncIntervalMs);
            } catch {
              emit('SyncLost', entries.length, 'Count', { from: from.name, to: to.name });
            }
            return;
          }
          stats.sync.retries++;
          emit('SyncRetry', 1, 'Count', { from: from.name, to: to.name });
          await sleep(50 * 2 ** attempt);
        }
      }
    };
    if (!settings.sync.async) return job();
    // Mirrors of one item run in the order their writes were answered (a set then a delete
    // must not arrive as a delete then a set); different items run concurrently.
    const items = entries.map(itemOf);
    const before = items.map((item) => mirrorTails.get(item)).filter((p) => p !== undefined);
    const pending: Promise<void> = Promise.all(before)
      .then(job)
      .finally(() => {
        pendingMirrors.delete(pending);
        for (const item of items) if (mirrorTails.get(item) === pending) mirrorTails.delete(item);
        stats.sync.pending = pendingMirrors.size;
      });
    for (const item of items) mirrorTails.set(item, pending);
    pendingMirrors.add(pending);
    stats.sync.pending = pendingMirrors.size;
  }

  // -------------------------------------------------------------------------------------
  // reconciliation

  /**
   * Asks for a reconcile in `delayMs`. Every request gets a pass that starts no earlier than it
   * asked: a shorter delay is not held up by a longer one already pending (a 1 s retry behind a
   * 60 s sync interval), and the longer one still runs after the shorter one (entries requeued
   * with a delay are visible only then). Requests are kept per 100 ms.
   */
  function scheduleReconcile(delayMs: number): void {
    if (closed) return;
    wanted.add(Math.ceil((Date.now() + delayMs) / 100) * 100);
    armFollowUp();
  }

  function armFollowUp(): void {
    if (closed || wanted.size === 0) return;
    const next = Math.min(...wanted);
    if (followUp) {
      if (followUpAt <= next) return;
      clearTimeout(followUp);
    }
    followUpAt = next;
    followUp = setTimeout(
      () => {
        followUp = undefined;
        const now = Date.now();
        for (const at of wanted) if (at <= now) wanted.delete(at);
        void reconcile()
          .catch(() => 0)
          .finally(armFollowUp);
      },
      Math.max(0, next - Date.now()),
    );
    followUp.unref();
  }

  function reconcile(): Promise<number> {
    if (reconciling) return reconciling;
    reconciling = (async () => {
      let applied = 0;
      for (const target of members.values()) {
        if (target.state === 'closed') applied += await reconcileInto(target).catch(() => 0);
      }
      return applied;
    })().finally(() => {
      reconciling = undefined;
    });
    return reconciling;
  }

  /**
   * Drains every other backend's journal of entries for `target`. Throws when `target` fails,
   * and — while `target` is recovering (its breaker waits for this pass to close) — when a
   * source journal cannot be locked, read or drained to the end: the breaker closes only once
   * every journal is known drained.
   */
  async function reconcileInto(target: Member): Promise<number> {
    stats.reconcile.runs++;
    let applied = 0;
    let pending = false;
    let more = false;
    for (const source of members.values()) {
      if (source === target || closed) continue;
      const q = source.driver.queues;
      const lock = source.driver.kv;
      // Lock operations are not on a request's path: they get the apply deadline.
      const deadline = Math.max(deadlineOf(source), settings.operationTimeoutMs * 10);
      // One acquisition, one token: only its holder renews or releases the lock.
      const token = randomUUID();
      const owner: Owner = { token, safeUntil: 0, expiresAt: 0 };
      /** Throws JournalBusy while either journal has entries leased (by a reconciler that lost the lock). */
      const noLeasesLeft = async () => {
        for (const queue of JOURNAL_QUEUES) {
          const left = await withDeadline(q.stats(queue), deadline, source.name);
          if (left.inFlight > 0) throw new JournalBusy('entries leased by another reconciler');
        }
      };
      const release = async () => {
        try {
          const holder = await withDeadline(lock.get(JOURNAL_LOCK), deadline, source.name);
          if (holder === token) await withDeadline(lock.delete(JOURNAL_LOCK), deadline, source.name);
          if (orphanedLocks.get(source.name) === token) orphanedLocks.delete(source.name);
        } catch {
          // Perhaps held (the acquisition may have landed unanswered): remembered, so a later
          // pass of this process can take it back. A token that never landed is forgotten then.
          orphanedLocks.set(source.name, token);
        }
      };
      /** The lock held by a token of this process whose pass ended without releasing it: taken back. */
      const takeBack = async (): Promise<boolean> => {
        const orphan = orphanedLocks.get(source.name);
        if (orphan === undefined) return false;
        const [holder, ttl] = await withDeadline(
          Promise.all([lock.get(JOURNAL_LOCK), lock.ttlMs(JOURNAL_LOCK)]),
          deadline,
          source.name,
        );
        if (holder !== orphan) {
          orphanedLocks.delete(source.name);
          return false;
        }
        // Only with time to spare: a lock about to expire may pass to another reconciler first.
        if (typeof ttl !== 'number' || ttl <= deadline + lockMarginMs) return false;
        await withDeadline(lock.delete(JOURNAL_LOCK), deadline, source.name);
        orphanedLocks.delete(source.name);
        return withDeadline(
          lock.set(JOURNAL_LOCK, JSON.stringify(token), { ttlMs: settings.journalLockMs }, 'nx'),
          deadline,
          source.name,
        );
      };
      try {
        // One reconciler per journal at a time, across containers: two draining one journal
        // at once could apply two entries of one key in the wrong order.
        const acquiring = lock.set(
          JOURNAL_LOCK,
          JSON.stringify(token),
          { ttlMs: settings.journalLockMs },
          'nx',
        );
        // An acquisition that answers after its deadline does not keep the journal locked.
        acquiring.then((ok) => (ok && owner.safeUntil < 0 ? release() : undefined)).catch(() => {});
        const locked = await withDeadline(acquiring, deadline, source.name).catch((error) => {
          owner.safeUntil = -1;
          throw error;
        });
        if (!locked && !(await takeBack())) throw new JournalBusy('held by another reconciler');
        owner.safeUntil = 0;
        owner.expiresAt = Date.now() + settings.journalLockMs;
        // A journal entry is never dropped: one that died (a crashed reconciler held it too often) comes back.
        for (const queue of JOURNAL_QUEUES) await withDeadline(q.redrive(queue, 1000), deadline, source.name);
        // Entries a reconciler that lost the lock still leases (frozen between its lock check and
        // its receive) come back when their lease ends: replaying what follows them first would
        // let them land last.
        await noLeasesLeft();
      } catch (error) {
        await release();
        // A recovering breaker waits: another reconciler holds the journal, or the source
        // cannot be read (its journal may hold the outage's writes).
        if (target.state !== 'closed') throw error;
        pending = true; // a later pass retries; the journal waits, durably
        continue;
      }
      try {
        for (const queue of JOURNAL_QUEUES) await drainJournal(source, owner, queue);
        // Entries still leased by a reconciler that lost the lock (died, frozen) come back when
        // their lease ends; until then the journal is not known drained.
        if (target.state !== 'closed' && !closed) await noLeasesLeft();
      } catch (error) {
        if (!(error instanceof JournalBusy) || target.state !== 'closed') throw error;
        pending = true; // the lock passed on mid-drain: a later pass takes up both journals
      } finally {
        // Released only while still ours (a stalled reconciler's lock may have passed to another).
        await release();
      }
    }
    if (applied > 0) emit('Reconciled', applied, 'Count', { target: target.name });
    if (pending) scheduleReconcile(1000);
    // Entries that arrived during the pass: the next pass, at once.
    if (more) scheduleReconcile(0);
    // While the breaker is recovering, reads still go to the fallback: its copies stay until it closed.
    if (target.state === 'closed') await runCleanups(target);
    return applied;

    /**
     * Throws JournalBusy once the lock is no longer this pass's (it expired and another
     * reconciler may hold it): nothing more is applied. Before every entry: the lock is read
     * (and renewed while ours) unless a read showed it ours for longer than half its length,
     * so that until then no other reconciler can have taken it.
     */
    async function stillOurs(source: Member, owner: Owner, force = false): Promise<void> {
      if (!force && Date.now() < owner.safeUntil) return;
      const lock = source.driver.kv;
      const deadline = Math.max(deadlineOf(source), settings.operationTimeoutMs * 10);
      const checkedAt = Date.now();
      const [holder, ttl] = await withDeadline(
        Promise.all([lock.get(JOURNAL_LOCK), lock.ttlMs(JOURNAL_LOCK)]),
        deadline,
        source.name,
      );
      // Not renewed when it might expire before the renewal lands (another may then hold it).
      if (holder !== owner.token || typeof ttl !== 'number' || ttl <= lockMarginMs) {
        owner.safeUntil = 0;
        throw new JournalBusy('the journal lock is no longer ours');
      }
      let expiresAt = checkedAt + ttl;
      if (ttl < settings.journalLockMs / 2) {
        await withDeadline(
          lock.set(JOURNAL_LOCK, JSON.stringify(owner.token), { ttlMs: settings.journalLockMs }, 'xx'),
          deadline,
          source.name,
        );
        expiresAt = checkedAt + settings.journalLockMs;
      }
      owner.expiresAt = expiresAt;
      owner.safeUntil = expiresAt - settings.journalLockMs / 2;
    }

    /**
     * Replays the entries the journal held when the pass began (the visible ones; FIFO, so those
     * come first). A pass never chases entries that keep arriving — writes from containers still
     * failing over, or direct writes journaled behind the waiting ones — so it ends under any
     * write rate; what arrived meanwhile is the next pass's, started at once. A breaker may close
     * after its pass: a direct write made after that is itself journaled behind what still
     * waits (see `write`), so no later replay can undo it.
     */
    async function drainJournal(source: Member, owner: Owner, queue: string): Promise<void> {
      const q = source.driver.queues;
      const deadline = Math.max(deadlineOf(source), settings.operationTimeoutMs * 10);
      const atStart = await withDeadline(q.stats(queue), deadline, source.name);
      let budget = atStart.depth - atStart.delayed;
      // The batch shrinks after one whose tail went back unreached (a slow target) and grows
      // back after full ones, kept from pass to pass: an entry received again and again would
      // reach `queues.maxAttempts` and die (a redrive would then put it last).
      const sizeKey = `${source.name}|${queue}`;
      let batchSize = batchSizes.get(sizeKey) ?? 50;
      for (;;) {
        if (closed || budget <= 0) break;
        // Read (and renewed) before every batch: the batch's lease ends before the lock can, so
        // entries a frozen reconciler holds are visible again before anyone else can hold the
        // lock — they are never replayed after what the next holder applies.
        await stillOurs(source, owner, true);
        const leaseMs = Math.min(journalLeaseMs, Math.max(100, owner.expiresAt - Date.now() - lockMarginMs));
        const batch = await q.receive(queue, Math.min(batchSize, budget), leaseMs, 0);
        const receivedAt = performance.now();
        if (batch.length === 0) break;
        // Entries from `next` on are not finished: on any failure they go back at once, in place
        // (a nack keeps each entry's place, so later passes replay in the same order), never
        // left leased until their lease ends.
        let next = 0;
        const giveBack = async () => {
          for (const rest of batch.slice(next)) {
            await q.nack(queue, rest.id, rest.receipt, 0).catch(() => {});
          }
        };
        try {
          // Entries not reached while half their lease is left go back for the next batch.
          const fresh = () => !closed && performance.now() - receivedAt <= leaseMs / 2;
          await applyBatch(source, owner, queue, batch, fresh, (index) => {
            next = index;
          });
          batchSize = next < batch.length ? Math.max(1, Math.floor(next / 2)) : Math.min(50, batchSize * 2);
          batchSizes.set(sizeKey, batchSize);
        } finally {
          await giveBack();
        }
        // Entries that went back unreached are still this pass's: they come first in the next batch.
        budget -= next;
        if (budget <= 0) more = true;
      }
    }

    async function applyBatch(
      source: Member,
      owner: Owner,
      queue: string,
      batch: Awaited<ReturnType<QueueDriver['receive']>>,
      fresh: () => boolean,
      /** Entries before `index` are acked or requeued. */
      finished: (index: number) => void,
    ): Promise<void> {
      const q = source.driver.queues;
      // Queues this batch already moved: every message a later entry of the batch stands for
      // was sent before the batch was received, so that move took it (or its entry was requeued).
      const moved = new Set<string>();
      // A state entry (kv, session, connection) followed in the batch by one of the same kind for
      // the same item is superseded: applying only the later one ends in the same state. A hot
      // key written through an outage replays once per batch, not once per write.
      const supersededKey = (record: JournalRecord) =>
        record.entry.t === 'kv' || record.entry.t === 'session' || record.entry.t === 'conn'
          ? `${record.target}|${record.kind ?? 'fallback'}|${itemOf(record.entry)}`
          : undefined;
      const lastOf = new Map<string, number>();
      for (const [index, message] of batch.entries()) {
        const key = supersededKey(message.payload as unknown as JournalRecord);
        if (key !== undefined) lastOf.set(key, index);
      }
      for (const [index, message] of batch.entries()) {
        finished(index);
        if (!fresh()) return;
        // Checked before every entry: a reconciler that lost the lock applies nothing more.
        await stillOurs(source, owner);
        const record = message.payload as unknown as JournalRecord;
        const requeue = async (delayMs: number) => {
          await q.send(queue, JSON.stringify(record), delayMs, undefined);
          await q.ack(queue, message.id, message.receipt);
        };
        if (record.target !== target.name) {
          await requeue(0);
          continue;
        }
        const key = supersededKey(record);
        const superseded = key !== undefined && lastOf.get(key) !== index;
        if (superseded || (record.entry.t === 'queue' && moved.has(record.entry.queue))) {
          // A superseded fallback entry's copy still goes once the primary closed (best effort).
          if (superseded && (record.kind ?? 'fallback') === 'fallback' && !settings.sync.enabled) {
            const entry = record.entry;
            cleanupsOf(target.name).push(() => cleanSource(entry, source.driver));
          }
          await q.ack(queue, message.id, message.receipt);
          // Acked without a write: counted apart from the entries applied.
          stats.reconcile.skipped++;
          continue;
        }
        let outcome: 'done' | 'pending';
        try {
          const mirror = record.kind === 'mirror';
          const applying = (async () => {
            const entry = mirror ? await currentState(record.entry, source.driver) : record.entry;
            const outcome = await applyEntry(entry, target.driver, source.driver, {
              sessionChanged: invalidate,
              // Before each write of the entry, not only before the entry: a reconciler frozen
              // between two writes of one entry (a session's keepAlive and create) makes neither.
              guard: () => stillOurs(source, owner),
            });
            // The fallback's copy goes once the primary has it, unless the fallback is a
            // dual-write mirror (an `ordered` entry has no copy there).
            const copied = record.kind === undefined || record.kind === 'fallback';
            if (copied && !settings.sync.enabled && outcome === 'done') {
              cleanupsOf(target.name).push(() => cleanSource(entry, source.driver));
            }
            return outcome;
          })();
          // A queue move runs as long as the queue is long; anything else is a write or two.
          outcome =
            record.entry.t === 'queue'
              ? await applying
              : await withDeadline(applying, settings.operationTimeoutMs * 10, target.name);
        } catch (error) {
          // The lock may be another's now: nothing more, not even a requeue (the caller gives back).
          if (error instanceof JournalBusy) throw error;
          stats.reconcile.errors++;
          emit('ReconcileError', 1, 'Count', { source: source.name, target: target.name });
          // The target went away again: this entry and the rest of the batch go back (the caller).
          if (isOutage(error)) throw error;
          // A refusal retrying will not cure soon: behind the others, later.
          await requeue(5000);
          continue;
        }
        if (record.entry.t === 'queue') moved.add(record.entry.queue);
        if (outcome === 'pending') {
          pending = true;
          stats.reconcile.pending++;
          await requeue(1000);
        } else {
          await q.ack(queue, message.id, message.receipt);
          applied++;
          stats.reconcile.applied++;
        }
      }
      finished(batch.length);
    }
  }

  /**
   * Removes the fallback copies of entries that reached `target`, once its breaker is closed
   * (while it recovers, reads of its data types still go to those copies).
   */
  async function runCleanups(target: Member): Promise<void> {
    if (target.state !== 'closed') return;
    for (const cleanup of cleanupsOf(target.name).splice(0)) await cleanup().catch(() => {});
  }

  // -------------------------------------------------------------------------------------
  // the isClusterActive read-through cache (Redis in front of PostgreSQL sessions)

  const cacheUsable = () =>
    cacheOn &&
    redis!.state === 'closed' &&
    primaryOf('sessions').state === 'closed' &&
    Date.now() >= cacheSuspectUntil;

  /**
   * Invalidation writes a fresh generation (a random token, never an increment that could
   * repeat after the key expires); cached answers carry the generation they were computed
   * under and are ignored once it changed.
   */
  async function invalidate(clusterId: string): Promise<void> {
    if (!cacheOn) return;
    try {
      const ttlMs = Math.max(settings.cache.ttlMs * 10, 60_000);
      await withDeadline(
        redis!.driver.kv.set(GEN_KEY + clusterId, JSON.stringify(randomUUID()), { ttlMs }, undefined),
        settings.operationTimeoutMs,
        'redis',
      );
      stats.cache.invalidations++;
    } catch (error) {
      stats.cache.invalidationFailures++;
      emit('CacheInvalidationFailure', 1, 'Count', { backend: 'redis' });
      // This process stops trusting the cache for as long as an entry can live.
      cacheSuspectUntil = Date.now() + settings.cache.ttlMs;
      if (isOutage(error)) open(redis!, error);
    }
  }

  async function isClusterActive(clusterId: string): Promise<boolean> {
    if (!cacheUsable())
      return read('sessions', 'sessions.isClusterActive', (d) => d.sessions.isClusterActive(clusterId));
    const started = performance.now();
    let generation: string | undefined;
    try {
      const [cached, gen] = await withDeadline(
        redis!.driver.kv.getMany([CACHE_KEY + clusterId, GEN_KEY + clusterId]),
        settings.operationTimeoutMs,
        'redis',
      );
      generation = typeof gen === 'string' ? gen : '-';
      const c = cached as { g?: string; a?: boolean; u?: number } | undefined;
      if (c && c.g === generation && typeof c.u === 'number' && c.u > Date.now()) {
        stats.cache.hits++;
        emit('CacheHit', 1, 'Count', { cache: 'isClusterActive' });
        emit('BackendLatency', performance.now() - started, 'Milliseconds', {
          backend: 'redis',
          operation: 'sessions.isClusterActive.cached',
        });
        return c.a === true;
      }
    } catch (error) {
      if (isOutage(error)) open(redis!, error);
    }
    stats.cache.misses++;
    emit('CacheMiss', 1, 'Count', { cache: 'isClusterActive' });
    const {
      value: live,
      served,
      primary,
    } = await serve('sessions', 'sessions.byCluster', (m) => m.driver.sessions.byCluster(clusterId));
    const active = live.length > 0;
    const now = Date.now();
    // A positive answer lives no longer than the cluster's last live session.
    const until = active
      ? Math.min(now + settings.cache.ttlMs, Math.max(...live.map((s) => Date.parse(s.expiresAt))))
      : now + settings.cache.negativeTtlMs;
    if (generation !== undefined && served === primary && until > now && cacheUsable()) {
      const value = JSON.stringify({ g: generation, a: active, u: until });
      await withDeadline(
        redis!.driver.kv.set(CACHE_KEY + clusterId, value, { ttlMs: until - now }, undefined),
        settings.operationTimeoutMs,
        'redis',
      ).catch(() => {});
    }
    return active;
  }

  // -------------------------------------------------------------------------------------
  // the stores

  const kvSnapshot = async (d: Driver, key: string): Promise<JournalEntry[]> => {
    const entry = await d.kv.getEntry(key);
    return [
      {
        t: 'kv',
        key,
        json: entry === undefined ? null : JSON.stringify(entry.value),
        atMs: entry?.expiresAt ? Date.parse(entry.expiresAt) : null,
      },
    ];
  };
  const atMsOf = (expiry: Expiry | undefined): number | null =>
    expiry === undefined ? null : 'ttlMs' in expiry ? Date.now() + expiry.ttlMs : expiry.atMs;
  /**
   * Takes a fallback kv write back: while the key still holds what the write left (`json`), its
   * earlier entry (`prior`, read before the write) is put back, or the key deleted if it had none.
   */
  const restoreKv = async (d: Driver, key: string, json: string, prior: KvEntry | undefined) => {
    if (!(await holdsValue(d, key, json))) return;
    if (prior === undefined) await d.kv.delete(key);
    else {
      const atMs = prior.expiresAt ? Date.parse(prior.expiresAt) : undefined;
      await d.kv.set(key, JSON.stringify(prior.value), atMs === undefined ? undefined : { atMs }, undefined);
    }
  };

  const kv: KvDriver = {
    get: (key) => read('cache', 'kv.get', (d) => d.kv.get(key)),
    getEntry: (key) => read('cache', 'kv.getEntry', (d) => d.kv.getEntry(key)),
    set: (key, json, expiry, condition) =>
      write(
        'cache',
        'kv.set',
        (d) => d.kv.set(key, json, expiry, condition),
        (_d, ok) => (ok ? [{ t: 'kv', key, json, atMs: atMsOf(expiry) }] : []),
        {
          before: (d) => d.kv.getEntry(key),
          undo: (d, ok, prior) =>
            ok ? restoreKv(d, key, json, prior as KvEntry | undefined) : Promise.resolve(),
          undoSafeUnderSync: true,
        },
      ),
    delete: (key) =>
      write(
        'cache',
        'kv.delete',
        (d) => d.kv.delete(key),
        () => [{ t: 'kv', key, json: null, atMs: null }],
      ),
    exists: (key) => read('cache', 'kv.exists', (d) => d.kv.exists(key)),
    expire: (key, expiry) =>
      write(
        'cache',
        'kv.expire',
        (d) => d.kv.expire(key, expiry),
        (d, ok) => (ok ? kvSnapshot(d, key) : []),
      ),
    ttlMs: (key) => read('cache', 'kv.ttl', (d) => d.kv.ttlMs(key)),
    incr: (key, by) =>
      write(
        'cache',
        'kv.incr',
        (d) => d.kv.incr(key, by),
        (d) => kvSnapshot(d, key),
        // Counted back: other containers' increments stay (a counter this incr created stays at 0).
        { undo: (d) => d.kv.incr(key, -by), undoSafeUnderSync: true },
      ),
    getMany: (keys) => read('cache', 'kv.getMany', (d) => d.kv.getMany(keys)),
    setMany: (entries) =>
      write(
        'cache',
        'kv.setMany',
        (d) => d.kv.setMany(entries),
        () =>
          entries.map((e) => ({
            t: 'kv' as const,
            key: e.key,
            json: e.json,
            atMs: e.ttlMs === undefined ? null : Date.now() + e.ttlMs,
          })),
        {
          before: (d) => Promise.all(entries.map((e) => d.kv.getEntry(e.key))),
          undo: async (d, _result, prior) => {
            const priors = prior as (KvEntry | undefined)[];
            await Promise.all(entries.map((e, i) => restoreKv(d, e.key, e.json, priors[i])));
          },
          undoSafeUnderSync: true,
        },
      ),
  };

  const sessions: SessionDriver = {
    async create(session) {
      const created = await write(
        'sessions',
        'sessions.create',
        (d) => d.sessions.create(session),
        (_d, s) => [{ t: 'session', id: s.sessionId, session: s }],
        { undo: (d, s) => d.sessions.end(s.sessionId), undoSafeUnderSync: true },
      );
      await invalidate(created.clusterId);
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
      if (kept) await invalidate(kept.clusterId);
      return kept;
    },
    async end(id) {
      const { ended, clusterId } = await write(
        'sessions',
        'sessions.end',
        async (d) => {
          // The cluster to invalidate; a session's cluster never changes.
          const before = cacheOn ? await d.sessions.get(id) : undefined;
          return { ended: await d.sessions.end(id), clusterId: before?.clusterId };
        },
        () => [{ t: 'session', id, session: null }],
      );
      if (clusterId !== undefined) await invalidate(clusterId);
      return ended;
    },
    byCluster: (clusterId) => read('sessions', 'sessions.byCluster', (d) => d.sessions.byCluster(clusterId)),
    byCorrelation: (correlationId) =>
      read('sessions', 'sessions.byCorrelation', (d) => d.sessions.byCorrelation(correlationId)),
    // Not cached: one list for all clusters, changed by every create and end anywhere.
    activeClusterPage: (after, limit, within) =>
      read('sessions', 'sessions.activeClusters', (d) => d.sessions.activeClusterPage(after, limit, within)),
    isClusterActive,
  };

  /** Receipts say which backend leased the message, so ack/nack/extend go back to it. */
  const tag = (m: Member, receipt: string) =>
    fallbackOn ? `${TAGS[m.name]}${TAG_SEPARATOR}${receipt}` : receipt;
  const untag = (receipt: string): { m: Member; receipt: string } => {
    const primary = primaryOf('queues');
    if (!fallbackOn || receipt[1] !== TAG_SEPARATOR) return { m: primary, receipt };
    const name = (Object.keys(TAGS) as BackendName[]).find((b) => TAGS[b] === receipt[0]);
    const m = name ? members.get(name) : undefined;
    return m ? { m, receipt: receipt.slice(2) } : { m: primary, receipt };
  };
  /** A lease lives on the backend that issued it: no fallback, but a timeout still opens its breaker. */
  async function onLeaseHolder<T>(op: string, receipt: string, run: (d: Driver, r: string) => Promise<T>) {
    touch();
    const { m, receipt: raw } = untag(receipt);
    const started = performance.now();
    try {
      const value = await withDeadline(run(m.driver, raw), deadlineOf(m), m.name);
      m.warm = true;
      record('queues', m, m === primaryOf('queues') ? 'primary' : 'fallback', op, started);
      return value;
    } catch (error) {
      if (isOutage(error)) open(m, error);
      throw error;
    }
  }
  /**
   * Every send the fallback takes journals its queue: whether an earlier entry of this queue is
   * still waiting in the journal is not known here (another container, or this one's replay, may
   * have moved it already). Replaying an entry whose queue is empty is two reads.
   */
  const queueJournal = (queue: string): JournalEntry[] => [{ t: 'queue', queue }];

  const queues: QueueDriver = {
    send: (queue, json, delayMs, dedupId) =>
      write(
        'queues',
        'queues.send',
        (d) => d.queues.send(queue, json, delayMs, dedupId),
        () => [],
        { mirror: false, ordered: false, journalFirst: queueJournal(queue) },
      ),
    async receive(queue, max, visibilityMs, waitMs) {
      const { value, served } = await serve(
        'queues',
        'queues.receive',
        (m, left) => m.driver.queues.receive(queue, max, visibilityMs, left),
        waitMs,
      );
      return value.map((message) => ({ ...message, receipt: tag(served, message.receipt) }));
    },
    ack: (queue, id, receipt) => onLeaseHolder('queues.ack', receipt, (d, r) => d.queues.ack(queue, id, r)),
    nack: (queue, id, receipt, delayMs) =>
      onLeaseHolder('queues.nack', receipt, (d, r) => d.queues.nack(queue, id, r, delayMs)),
    extend: (queue, id, receipt, visibilityMs) =>
      onLeaseHolder('queues.extend', receipt, (d, r) => d.queues.extend(queue, id, r, visibilityMs)),
    stats: (queue) => read('queues', 'queues.stats', (d) => d.queues.stats(queue)),
    deadLetters: (queue, limit) =>
      read('queues', 'queues.deadLetters', (d) => d.queues.deadLetters(queue, limit)),
    redrive: (queue, limit) =>
      write(
        'queues',
        'queues.redrive',
        (d) => d.queues.redrive(queue, limit),
        () => [],
        { mirror: false, ordered: false, journalFirst: queueJournal(queue) },
      ),
  };

  // Event reads and subscriptions stay on the primary: ids are one sequence per channel, and
  // mixing the fallback's sequence in would make a subscriber's cursor skip events.
  const onPrimary = async <T>(op: string, run: (d: Driver) => Promise<T>) => {
    touch();
    const m = primaryOf('pubsub');
    const started = performance.now();
    const value = await run(m.driver);
    record('pubsub', m, 'primary', op, started);
    return value;
  };
  const events: EventDriver = {
    publish: (channel, json, maxHistory) =>
      write(
        'pubsub',
        'events.publish',
        (d) => d.events.publish(channel, json, maxHistory),
        () => [{ t: 'event', channel, json, maxHistory }],
        { mirror: false, ordered: false },
      ),
    last: (channel) => onPrimary('events.last', (d) => d.events.last(channel)),
    history: (channel, after, limit) =>
      onPrimary('events.history', (d) => d.events.history(channel, after, limit)),
    subscribe: (channel, onEvent, onReconnect) =>
      onPrimary('events.subscribe', (d) => d.events.subscribe(channel, onEvent, onReconnect)),
  };

  const tokens: TokenDriver = {
    // The insert and a revoke of its issuer meet on the one backend serving authentication,
    // which keeps them atomic; a replay under an issuer revoked meanwhile inserts nothing.
    insert: (token) =>
      write(
        'authentication',
        'tokens.insert',
        (d) => d.tokens.insert(token),
        (_d, inserted) => (inserted ? [{ t: 'token', token }] : []),
        // Nobody holds an unacknowledged token; its record must not verify on the fallback.
        { undo: async (d, inserted) => inserted && d.tokens.revoke(token.id), undoSafeUnderSync: true },
      ),
    findByHash: (hash) => readOwn('authentication', 'tokens.verify', (d) => d.tokens.findByHash(hash)),
    findById: (id) => readOwn('authentication', 'tokens.get', (d) => d.tokens.findById(id)),
    // Journaled even when the fallback did not know the token: it may live on the primary.
    revoke: (id) =>
      write(
        'authentication',
        'tokens.revoke',
        (d) => d.tokens.revoke(id),
        () => [{ t: 'revoke', id }],
      ),
    page: (after, limit, within) =>
      read('authentication', 'tokens.list', (d) => d.tokens.page(after, limit, within)),
  };

  const audit: AuditDriver = {
    append: (entry) =>
      write(
        'audit',
        'audit.append',
        (d) => d.audit.append(entry),
        (_d, e) => [{ t: 'audit', entry: e }],
        // Appends cannot undo one another: replayed in any order they are the same set.
        { ordered: false },
      ),
    query: (query) => read('audit', 'audit.query', (d) => d.audit.query(query)),
  };

  const connSnapshot = async (d: Driver, id: string): Promise<JournalEntry[]> => [
    { t: 'conn', id, connection: (await d.connections.get(id)) ?? null },
  ];
  const connections: ConnectionDriver = {
    // Counted on the backend that takes the registration (the fallback's own count in an outage).
    register: (connection, maxPerToken) =>
      write(
        'pubsub',
        'connections.register',
        (d) => d.connections.register(connection, maxPerToken),
        (_d, c) => (c === 'full' ? [] : [{ t: 'conn', id: c.connectionId, connection: c }]),
        { undo: async (d, c) => (c === 'full' ? undefined : d.connections.remove(c.connectionId)) },
      ),
    get: (id) => read('pubsub', 'connections.get', (d) => d.connections.get(id)),
    subscribe: (id, channel, maxChannels) =>
      write(
        'pubsub',
        'connections.subscribe',
        (d) => d.connections.subscribe(id, channel, maxChannels),
        (d, outcome) => (outcome === 'subscribed' ? connSnapshot(d, id) : []),
      ),
    unsubscribe: (id, channel) =>
      write(
        'pubsub',
        'connections.unsubscribe',
        (d) => d.connections.unsubscribe(id, channel),
        (d) => connSnapshot(d, id),
      ),
    subscribers: (channel, after, limit) =>
      read('pubsub', 'connections.subscribers', (d) => d.connections.subscribers(channel, after, limit)),
    remove: (id) =>
      write(
        'pubsub',
        'connections.remove',
        (d) => d.connections.remove(id),
        () => [{ t: 'conn', id, connection: null }],
      ),
    byToken: (tokenId, after, limit) =>
      read('pubsub', 'connections.byToken', (d) => d.connections.byToken(tokenId, after, limit)),
    withExpiredToken: (limit) =>
      read('pubsub', 'connections.withExpiredToken', (d) => d.connections.withExpiredToken(limit)),
  };

  // Transient: which connection waits for which queue lives where the connections do, and is
  // neither journaled nor mirrored (a consumer whose backend failed over registers again).
  const consumers = consumersOn((op, run) => read('pubsub', `consumers.${op}`, run));

  // -------------------------------------------------------------------------------------
  // the whole

  async function health(): Promise<HealthReport> {
    const checks: Record<string, HealthCheck> = {};
    await Promise.all(
      [...members.values()].map(async (m) => {
        const started = performance.now();
        try {
          await withDeadline(m.driver.ping(), Math.max(settings.operationTimeoutMs, 1000), m.name);
          const latencyMs = Math.round((performance.now() - started) * 100) / 100;
          const warnings = m.driver.warnings?.() ?? [];
          const durability = m.driver.durabilityWarnings
            ? await withDeadline(
                m.driver.durabilityWarnings(),
                Math.max(settings.operationTimeoutMs, 1000),
                m.name,
              ).catch(() => [])
            : [];
          checks[m.name] = {
            ok: true,
            latencyMs,
            ...(warnings.length > 0 ? { error: warnings.join('; ') } : {}),
            ...(durability.length > 0 ? { warnings: durability } : {}),
          };
        } catch (error) {
          checks[m.name] = {
            ok: false,
            latencyMs: Math.round((performance.now() - started) * 100) / 100,
            error: error instanceof BackendUnavailableError ? error.message : 'not answering',
          };
        }
      }),
    );
    const up = (name: BackendName) => checks[name]?.ok === true;
    const served = DATA_TYPES.every((type) => {
      const primary = primaryOf(type);
      return up(primary.name) || fallbacksOf(primary).some((m) => up(m.name));
    });
    const allUp = [...members.keys()].every(up);
    const warned = Object.values(checks).some((check) => check.ok && check.error !== undefined);
    return { status: allUp && !warned ? 'ok' : served ? 'degraded' : 'down', backend: 'hybrid', checks };
  }

  const control: HybridControl = {
    settings,
    stats() {
      const lookups = stats.cache.hits + stats.cache.misses;
      stats.cache.hitRatio = lookups === 0 ? 0 : stats.cache.hits / lookups;
      for (const m of members.values()) stats.breakers[m.name] = m.state;
      return structuredClone(stats);
    },
    reconcile,
    async flush() {
      while (pendingMirrors.size > 0) await Promise.allSettled([...pendingMirrors]);
    },
    async journalDepth() {
      const depths: Partial<Record<BackendName, number>> = {};
      for (const m of members.values()) {
        try {
          let waiting = 0;
          for (const queue of JOURNAL_QUEUES) {
            const left = await withDeadline(m.driver.queues.stats(queue), deadlineOf(m), m.name);
            waiting += left.depth + left.inFlight + left.dead;
          }
          depths[m.name] = waiting;
          emit('JournalDepth', waiting, 'Count', { backend: m.name });
        } catch {
          // Unreadable now: its breaker and health check say so.
        }
      }
      return depths;
    },
    health,
    drivers: Object.fromEntries([...members].map(([name, m]) => [name, m.driver])),
  };

  return {
    name: 'hybrid',
    kv,
    sessions,
    queues,
    events,
    tokens,
    audit,
    connections,
    consumers,
    control,
    pools() {
      const all: ReturnType<NonNullable<Driver['pools']>> = {};
      for (const m of members.values()) Object.assign(all, m.driver.pools?.());
      return all;
    },
    async ping() {
      const report = await health();
      if (report.status === 'down') {
        throw new BackendUnavailableError('hybrid', 'no backend serves every data type');
      }
    },
    async sweep(batchSize) {
      const totals: Omit<SweepReport, 'durationMs'> = {
        kv: 0,
        sessions: 0,
        queues: 0,
        events: 0,
        tokens: 0,
        audit: 0,
        connections: 0,
      };
      for (const m of members.values()) {
        if (m.state !== 'closed') continue;
        const report = await m.driver.sweep(batchSize);
        for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += report[key];
      }
      // The scheduled sweep is also the reconciler of last resort (journals left by dead containers).
      if (fallbackOn || settings.sync.enabled) await reconcile().catch(() => 0);
      return totals;
    },
    async close() {
      closed = true;
      for (const m of members.values()) if (m.probe) clearTimeout(m.probe);
      if (followUp) clearTimeout(followUp);
      // In-flight replays stop at their next entry and release their journal locks.
      await Promise.allSettled([reconciling, ...probing, ...pendingMirrors]);
      await Promise.all([...members.values()].map((m) => m.driver.close()));
    },
  };
}
