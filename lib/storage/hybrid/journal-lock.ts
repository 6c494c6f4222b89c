/**
 * The lock of a backend's journal: one reconciler per journal at a time, across containers (two
 * draining one journal at once could apply two entries of one key in the wrong order). It lives
 * in the journal's own backend, as a kv key set through that backend's driver. Its value is a
 * token unique to one acquisition; the holder checks it before every entry it applies and renews
 * it only while it is still its own, with more than `marginMs` left.
 */
import { randomUUID } from 'node:crypto';
import type { KvDriver } from '../driver.js';
import { withDeadline } from './context.js';

export const JOURNAL_LOCK = '__kst_hybrid:journal-lock';

/** The journal is held by another reconciler (or this one lost it), or it cannot be read. */
export class JournalBusy extends Error {}

/**
 * Locks this process took and could not release (their backend went down mid-pass): journal
 * (its backend's name) → the lock's token. That pass is over, so when the lock is still its
 * token this process may take it back instead of waiting out its expiry after the backend is
 * back — a restarted Redis with AOF keeps the key.
 */
export type OrphanedLocks = Map<string, string>;

export interface JournalLockOptions {
  /** The journal's backend (names errors, keys `orphans`). */
  backend: string;
  /** How long the lock lives without a renewal (`settings.journalLockMs`). */
  lockMs: number;
  /**
   * How close to its expiry the lock is no longer renewed (the renewal might land after another
   * reconciler took it); a holder with no more than this left has lost it.
   */
  marginMs: number;
  /** The deadline of one lock operation (read when it starts). */
  deadlineMs: () => number;
  orphans: OrphanedLocks;
}

/** One acquisition of a journal's lock. */
export class JournalLock {
  readonly token = randomUUID();
  /** Until then no other reconciler can have taken the lock (no read needed before an entry). */
  safeUntil = 0;
  /** The lock's expiry as last read or renewed (a lower bound). */
  expiresAt = 0;
  /** The acquisition's answer came after its deadline: a late success is released at once. */
  private abandoned = false;

  constructor(
    private readonly kv: KvDriver,
    private readonly options: JournalLockOptions,
  ) {}

  /**
   * Takes the lock, or takes back an orphan of this process; throws `JournalBusy` when another
   * reconciler holds it, or the backend's error.
   */
  async acquire(): Promise<void> {
    const acquiring = this.kv.set(
      JOURNAL_LOCK,
      JSON.stringify(this.token),
      { ttlMs: this.options.lockMs },
      'nx',
    );
    // An acquisition that answers after its deadline does not keep the journal locked.
    acquiring.then((ok) => (ok && this.abandoned ? this.release() : undefined)).catch(() => {});
    const locked = await this.bounded(acquiring).catch((error: unknown) => {
      this.abandoned = true;
      throw error;
    });
    if (!locked && !(await this.takeBack())) throw new JournalBusy('held by another reconciler');
    this.safeUntil = 0;
    this.expiresAt = Date.now() + this.options.lockMs;
  }

  /**
   * Throws `JournalBusy` once the lock is no longer this acquisition's (it expired and another
   * reconciler may hold it). Unless `force`, a check within `safeUntil` reads nothing: a read
   * that showed the lock ours for longer than half its length means no other reconciler can
   * have taken it until then. A lock with less than half its length left is renewed.
   */
  async check(force = false): Promise<void> {
    if (!force && Date.now() < this.safeUntil) return;
    const { lockMs, marginMs } = this.options;
    const checkedAt = Date.now();
    const [holder, ttl] = await this.bounded(
      Promise.all([this.kv.get(JOURNAL_LOCK), this.kv.ttlMs(JOURNAL_LOCK)]),
    );
    // Not renewed when it might expire before the renewal lands (another may then hold it).
    if (holder !== this.token || typeof ttl !== 'number' || ttl <= marginMs) {
      this.safeUntil = 0;
      throw new JournalBusy('the journal lock is no longer ours');
    }
    let expiresAt = checkedAt + ttl;
    if (ttl < lockMs / 2) {
      await this.bounded(this.kv.set(JOURNAL_LOCK, JSON.stringify(this.token), { ttlMs: lockMs }, 'xx'));
      expiresAt = checkedAt + lockMs;
    }
    this.expiresAt = expiresAt;
    this.safeUntil = expiresAt - lockMs / 2;
  }

  /**
   * Releases the lock while it is still this acquisition's; remembered as orphaned when that
   * cannot be known. The read and the delete are two calls: a lock with no more than `marginMs`
   * left could expire and be taken by another reconciler between them, so it is left to expire.
   */
  async release(): Promise<void> {
    const { orphans, backend, marginMs } = this.options;
    try {
      const [holder, ttl] = await this.bounded(
        Promise.all([this.kv.get(JOURNAL_LOCK), this.kv.ttlMs(JOURNAL_LOCK)]),
      );
      if (holder === this.token && typeof ttl === 'number' && ttl > marginMs)
        await this.bounded(this.kv.delete(JOURNAL_LOCK));
      if (orphans.get(backend) === this.token) orphans.delete(backend);
    } catch {
      // Perhaps held (the acquisition may have landed unanswered): remembered, so a later
      // pass of this process can take it back. A token that never landed is forgotten then.
      orphans.set(backend, this.token);
    }
  }

  /** The lock held by a token of this process whose pass ended without releasing it: taken back. */
  private async takeBack(): Promise<boolean> {
    const { orphans, backend, lockMs, marginMs } = this.options;
    const orphan = orphans.get(backend);
    if (orphan === undefined) return false;
    const [holder, ttl] = await this.bounded(
      Promise.all([this.kv.get(JOURNAL_LOCK), this.kv.ttlMs(JOURNAL_LOCK)]),
    );
    if (holder !== orphan) {
      orphans.delete(backend);
      return false;
    }
    // Only with time to spare: a lock about to expire may pass to another reconciler first.
    if (typeof ttl !== 'number' || ttl <= this.options.deadlineMs() + marginMs) return false;
    await this.bounded(this.kv.delete(JOURNAL_LOCK));
    orphans.delete(backend);
    return this.bounded(this.kv.set(JOURNAL_LOCK, JSON.stringify(this.token), { ttlMs: lockMs }, 'nx'));
  }

  private bounded<T>(promise: Promise<T>): Promise<T> {
    return withDeadline(promise, this.options.deadlineMs(), this.options.backend);
  }
}
