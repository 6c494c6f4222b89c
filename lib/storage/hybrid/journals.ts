/**
 * The backends' journals as a whole: appending entries to one (durably, in that backend's own
 * queues), and knowing which ones hold entries waiting for a backend. The entry format and how
 * an entry is applied are in journal.ts.
 */
import { randomUUID } from 'node:crypto';
import { deadlineOf, type HybridContext, isOutage, type Member, sleep, withDeadline } from './context.js';
import { JOURNAL_QUEUE, type JournalEntry, type JournalRecord, journalQueueOf } from './journal.js';
import type { BackendName } from './settings.js';

export interface Journals {
  /**
   * Appends `entries` for `target` to `on`'s journal, each with a dedup id of its own so that a
   * retried append (up to 3 attempts, outages only) never doubles an entry.
   */
  append(
    on: Member,
    target: BackendName,
    entries: JournalEntry[],
    kind?: JournalRecord['kind'],
  ): Promise<void>;
  /**
   * The other backends whose state journal holds entries for `target` (waiting or being
   * replayed; entries requeued with a delay do not count). A clean answer is trusted for
   * `journalCheckMs`; a journal that cannot be read counts as empty and is not looked at again
   * before the next probe interval (its backend cannot take new entries while it does not
   * answer). A backend whose breaker is open is still looked at, briefly (its breaker may have
   * opened on one failed append while it holds entries).
   */
  waitingFor(target: Member): Promise<Member[]>;
}

export function createJournals(ctx: HybridContext): Journals {
  const { settings } = ctx;
  /** Per backend: until when no other backend's journal is known to hold entries for it. */
  const journalClean = new Map<BackendName, number>();
  /** Bumped whenever this process journals: a check begun before that does not count as clean. */
  let journalEpoch = 0;
  /** Per backend: until when its journal is not looked at again after a look failed. */
  const lookFailedUntil = new Map<BackendName, number>();

  async function waitingFor(target: Member): Promise<Member[]> {
    const now = Date.now();
    if (now < (journalClean.get(target.name) ?? 0)) return [];
    const epoch = journalEpoch;
    let known = true;
    const found = await Promise.all(
      [...ctx.members.values()]
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
    const waiting = found.filter((m) => m !== undefined);
    if (waiting.length === 0 && known && epoch === journalEpoch && settings.journalCheckMs > 0) {
      journalClean.set(target.name, now + settings.journalCheckMs);
    }
    return waiting;
  }

  async function append(
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
          await withDeadline(on.driver.queues.send(queue, text, 0, dedupId), deadlineOf(ctx, on), on.name);
          break;
        } catch (error) {
          if (!isOutage(error) || attempt >= 3) throw error;
          await sleep(25 * attempt);
        }
      }
    }
  }

  return { append, waitingFor };
}
