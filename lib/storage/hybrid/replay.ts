/**
 * One reconcile pass into one target, step by step: for each other backend, take its journal's
 * lock (journal-lock.ts), bring back dead entries and wait out leases a reconciler that lost the
 * lock still holds (`openJournal`), then replay what the journal held when the pass began, batch
 * by batch, checking the lock before every entry and every write (`drainJournal`, `applyBatch`,
 * `applyRecord`), and release the lock while it is still ours.
 */
import type { QueueDriver } from '../driver.js';
import { type HybridContext, isOutage, type Member, slowDeadlineOf, withDeadline } from './context.js';
import {
  applyEntry,
  cleanSource,
  currentState,
  itemOf,
  JOURNAL_QUEUES,
  type JournalRecord,
} from './journal.js';
import { JournalBusy, JournalLock, type OrphanedLocks } from './journal-lock.js';
import type { BackendName } from './settings.js';

type Batch = Awaited<ReturnType<QueueDriver['receive']>>;
type Message = Batch[number];

/** What the passes of one process share (the reconciler owns it). */
export interface ReplayState {
  readonly ctx: HybridContext;
  /**
   * How close to its expiry a journal lock is no longer renewed (the renewal might land after
   * another reconciler took it), and how long before it a batch's lease ends.
   */
  readonly lockMarginMs: number;
  readonly orphanedLocks: OrphanedLocks;
  /** Per journal (`source|queue`): how many entries a replay batch takes (see `drainJournal`). */
  readonly batchSizes: Map<string, number>;
  /** Removals of fallback copies whose entries reached the target (run once its breaker closed). */
  cleanupsOf(target: BackendName): (() => Promise<void>)[];
  sessionChanged(clusterId: string): Promise<void>;
  /** Asks for another pass in `delayMs`. */
  schedule(delayMs: number): void;
}

/** One pass into one target: what it applied, and whether it left work for a later pass. */
interface Pass {
  target: Member;
  applied: number;
  /** Entries wait for something (a lock, an earlier mirror): a pass in a second. */
  pending: boolean;
  /** Entries arrived during the pass: the next pass, at once. */
  more: boolean;
}

/**
 * Drains every other backend's journal of entries for `target`. Throws when `target` fails,
 * and — while `target` is recovering (its breaker waits for this pass to close) — when a
 * source journal cannot be locked, read or drained to the end: the breaker closes only once
 * every journal is known drained.
 */
export async function reconcileInto(replay: ReplayState, target: Member): Promise<number> {
  replay.ctx.stats.reconcile.runs++;
  const pass: Pass = { target, applied: 0, pending: false, more: false };
  for (const source of replay.ctx.members.values()) {
    if (source === target || replay.ctx.lifecycle.closed) continue;
    await drainSource(replay, pass, source);
  }
  if (pass.applied > 0) replay.ctx.emit('Reconciled', pass.applied, 'Count', { target: target.name });
  if (pass.pending) replay.schedule(1000);
  if (pass.more) replay.schedule(0);
  // While the breaker is recovering, reads still go to the fallback: its copies stay until it closed.
  if (target.state === 'closed') await runCleanups(replay, target);
  return pass.applied;
}

/** Throws JournalBusy while either journal has entries leased (by a reconciler that lost the lock). */
async function noLeasesLeft(replay: ReplayState, source: Member): Promise<void> {
  for (const queue of JOURNAL_QUEUES) {
    const left = await withDeadline(
      source.driver.queues.stats(queue),
      slowDeadlineOf(replay.ctx, source),
      source.name,
    );
    if (left.inFlight > 0) throw new JournalBusy('entries leased by another reconciler');
  }
}

/**
 * Takes the journal's lock and readies it for a drain: dead entries come back (a journal entry
 * is never dropped), and no entries may be leased by a reconciler that lost the lock.
 */
async function openJournal(replay: ReplayState, source: Member, lock: JournalLock): Promise<void> {
  await lock.acquire();
  for (const queue of JOURNAL_QUEUES) {
    await withDeadline(
      source.driver.queues.redrive(queue, 1000),
      slowDeadlineOf(replay.ctx, source),
      source.name,
    );
  }
  // Entries a reconciler that lost the lock still leases (frozen between its lock check and
  // its receive) come back when their lease ends: replaying what follows them first would
  // let them land last.
  await noLeasesLeft(replay, source);
}

/** Drains `source`'s journals of the pass's entries, under their lock. */
async function drainSource(replay: ReplayState, pass: Pass, source: Member): Promise<void> {
  const { target } = pass;
  // One acquisition, one token: only its holder renews or releases the lock.
  const lock = new JournalLock(source.driver.kv, {
    backend: source.name,
    lockMs: replay.ctx.settings.journalLockMs,
    marginMs: replay.lockMarginMs,
    deadlineMs: () => slowDeadlineOf(replay.ctx, source),
    orphans: replay.orphanedLocks,
  });
  try {
    await openJournal(replay, source, lock);
  } catch (error) {
    await lock.release();
    // A recovering breaker waits: another reconciler holds the journal, or the source
    // cannot be read (its journal may hold the outage's writes).
    if (target.state !== 'closed') throw error;
    pass.pending = true; // a later pass retries; the journal waits, durably
    return;
  }
  try {
    for (const queue of JOURNAL_QUEUES) await drainJournal(replay, pass, source, lock, queue);
    // Entries still leased by a reconciler that lost the lock (died, frozen) come back when
    // their lease ends; until then the journal is not known drained.
    if (target.state !== 'closed' && !replay.ctx.lifecycle.closed) await noLeasesLeft(replay, source);
  } catch (error) {
    if (!(error instanceof JournalBusy) || target.state !== 'closed') throw error;
    pass.pending = true; // the lock passed on mid-drain: a later pass takes up both journals
  } finally {
    // Released only while still ours (a stalled reconciler's lock may have passed to another).
    await lock.release();
  }
}

/**
 * Replays the entries the journal held when the pass began (the visible ones; FIFO, so those
 * come first). A pass never chases entries that keep arriving — writes from containers still
 * failing over, or direct writes journaled behind the waiting ones — so it ends under any
 * write rate; what arrived meanwhile is the next pass's, started at once. A breaker may close
 * after its pass: a direct write made after that is itself journaled behind what still
 * waits (see `write`), so no later replay can undo it.
 */
async function drainJournal(
  replay: ReplayState,
  pass: Pass,
  source: Member,
  lock: JournalLock,
  queue: string,
): Promise<void> {
  const q = source.driver.queues;
  const atStart = await withDeadline(q.stats(queue), slowDeadlineOf(replay.ctx, source), source.name);
  let budget = atStart.depth - atStart.delayed;
  // The batch shrinks after one whose tail went back unreached (a slow target) and grows
  // back after full ones, kept from pass to pass: an entry received again and again would
  // reach `queues.maxAttempts` and die (a redrive would then put it last).
  const sizeKey = `${source.name}|${queue}`;
  let batchSize = replay.batchSizes.get(sizeKey) ?? 50;
  for (;;) {
    if (replay.ctx.lifecycle.closed || budget <= 0) break;
    // Read (and renewed) before every batch: the batch's lease ends before the lock can, so
    // entries a frozen reconciler holds are visible again before anyone else can hold the
    // lock — they are never replayed after what the next holder applies.
    await lock.check(true);
    const leaseMs = Math.min(
      replay.ctx.settings.journalLockMs,
      Math.max(100, lock.expiresAt - Date.now() - replay.lockMarginMs),
    );
    const batch = await q.receive(queue, Math.min(batchSize, budget), leaseMs, 0);
    const receivedAt = performance.now();
    if (batch.length === 0) break;
    // Entries from `next` on are not finished: on any failure they go back at once, in place
    // (a nack keeps each entry's place, so later passes replay in the same order), never
    // left leased until their lease ends.
    let next = 0;
    try {
      // Entries not reached while half their lease is left go back for the next batch.
      const fresh = () => !replay.ctx.lifecycle.closed && performance.now() - receivedAt <= leaseMs / 2;
      await applyBatch(replay, pass, source, lock, queue, batch, fresh, (index) => {
        next = index;
      });
      batchSize = next < batch.length ? Math.max(1, Math.floor(next / 2)) : Math.min(50, batchSize * 2);
      replay.batchSizes.set(sizeKey, batchSize);
    } finally {
      for (const rest of batch.slice(next)) {
        await q.nack(queue, rest.id, rest.receipt, 0).catch(() => {});
      }
    }
    // Entries that went back unreached are still this pass's: they come first in the next batch.
    budget -= next;
    if (budget <= 0) pass.more = true;
  }
}

async function applyBatch(
  replay: ReplayState,

  pass: Pass,
  source: Member,
  lock: JournalLock,
  queue: string,
  batch: Batch,
  fresh: () => boolean,
  /** Entries before `index` are acked or requeued. */
  finished: (index: number) => void,
): Promise<void> {
  const q = source.driver.queues;
  // Queues this batch already moved: every message a later entry of the batch stands for
  // was sent before the batch was received, so that move took it (or its entry was requeued).
  const moved = new Set<string>();
  const lastOf = lastOfEachItem(batch);
  for (const [index, message] of batch.entries()) {
    finished(index);
    if (!fresh()) return;
    // Checked before every entry: a reconciler that lost the lock applies nothing more.
    await lock.check();
    const record = recordOf(message);
    const requeue = async (delayMs: number) => {
      await q.send(queue, JSON.stringify(record), delayMs, undefined);
      await q.ack(queue, message.id, message.receipt);
    };
    if (record.target !== pass.target.name) {
      await requeue(0);
      continue;
    }
    const key = supersededKey(record);
    const superseded = key !== undefined && lastOf.get(key) !== index;
    if (superseded || (record.entry.t === 'queue' && moved.has(record.entry.queue))) {
      // A superseded fallback entry's copy still goes once the primary closed (best effort).
      if (superseded && (record.kind ?? 'fallback') === 'fallback' && !replay.ctx.settings.sync.enabled) {
        const entry = record.entry;
        replay.cleanupsOf(pass.target.name).push(() => cleanSource(entry, source.driver));
      }
      await q.ack(queue, message.id, message.receipt);
      // Acked without a write: counted apart from the entries applied.
      replay.ctx.stats.reconcile.skipped++;
      continue;
    }
    let outcome: 'done' | 'pending';
    try {
      outcome = await applyRecord(replay, pass, source, lock, record);
    } catch (error) {
      // The lock may be another's now: nothing more, not even a requeue (the caller gives back).
      if (error instanceof JournalBusy) throw error;
      replay.ctx.stats.reconcile.errors++;
      replay.ctx.emit('ReconcileError', 1, 'Count', { source: source.name, target: pass.target.name });
      // The target went away again: this entry and the rest of the batch go back (the caller).
      if (isOutage(error)) throw error;
      // A refusal retrying will not cure soon: behind the others, later.
      await requeue(5000);
      continue;
    }
    if (record.entry.t === 'queue') moved.add(record.entry.queue);
    if (outcome === 'pending') {
      pass.pending = true;
      replay.ctx.stats.reconcile.pending++;
      await requeue(1000);
    } else {
      await q.ack(queue, message.id, message.receipt);
      pass.applied++;
      replay.ctx.stats.reconcile.applied++;
    }
  }
  finished(batch.length);
}

/** Applies one journal record to the pass's target; each write of it only while the lock is ours. */
async function applyRecord(
  replay: ReplayState,

  pass: Pass,
  source: Member,
  lock: JournalLock,
  record: JournalRecord,
): Promise<'done' | 'pending'> {
  const { target } = pass;
  const applying = (async () => {
    const entry = record.kind === 'mirror' ? await currentState(record.entry, source.driver) : record.entry;
    const outcome = await applyEntry(entry, target.driver, source.driver, {
      sessionChanged: replay.sessionChanged,
      // Before each write of the entry, not only before the entry: a reconciler frozen
      // between two writes of one entry (a session's keepAlive and create) makes neither.
      guard: () => lock.check(),
    });
    // The fallback's copy goes once the primary has it, unless the fallback is a
    // dual-write mirror (an `ordered` entry has no copy there).
    const copied = record.kind === undefined || record.kind === 'fallback';
    if (copied && !replay.ctx.settings.sync.enabled && outcome === 'done') {
      replay.cleanupsOf(target.name).push(() => cleanSource(entry, source.driver));
    }
    return outcome;
  })();
  // A queue move runs as long as the queue is long; anything else is a write or two.
  return record.entry.t === 'queue'
    ? applying
    : withDeadline(applying, replay.ctx.settings.operationTimeoutMs * 10, target.name);
}

/**
 * Removes the fallback copies of entries that reached `target`, once its breaker is closed
 * (while it recovers, reads of its data types still go to those copies).
 */
export async function runCleanups(replay: ReplayState, target: Member): Promise<void> {
  if (target.state !== 'closed') return;
  for (const cleanup of replay.cleanupsOf(target.name).splice(0)) await cleanup().catch(() => {});
}

/** A journal message's record (the journal holds nothing else). */
function recordOf(message: Message): JournalRecord {
  return message.payload as unknown as JournalRecord;
}

/**
 * A state entry (kv, session, connection) followed in the batch by one of the same kind for the
 * same item is superseded: applying only the later one ends in the same state. A hot key
 * written through an outage replays once per batch, not once per write.
 */
function supersededKey(record: JournalRecord): string | undefined {
  const { entry } = record;
  return entry.t === 'kv' || entry.t === 'session' || entry.t === 'conn'
    ? `${record.target}|${record.kind ?? 'fallback'}|${itemOf(entry)}`
    : undefined;
}

/** Each superseding key (see `supersededKey`) → the index of its last entry in the batch. */
function lastOfEachItem(batch: Batch): Map<string, number> {
  const lastOf = new Map<string, number>();
  for (const [index, message] of batch.entries()) {
    const key = supersededKey(recordOf(message));
    if (key !== undefined) lastOf.set(key, index);
  }
  return lastOf;
}
