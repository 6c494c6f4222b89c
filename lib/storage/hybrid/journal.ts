/**
 * What one backend must still receive from the other: snapshots of writes, kept DURABLY in the
 * backend that took the write (a queue of its own, through its own driver), so a Lambda
 * container that dies before the outage ends loses nothing: whichever container reconciles next
 * reads the journal and replays it.
 *
 * An entry is the *result* of a write (the value a key now has, the session as it now is, the
 * token record, the audit entry), not the call: applying it is idempotent, and replaying a
 * journal in order leaves the target with the last state the source answered.
 */
import type { Driver, StoredToken } from '../driver.js';
import type { AuditEntry, Connection, Session } from '../types.js';
import type { BackendName } from './settings.js';

/** The journal queue in each backend (a reserved queue name). */
export const JOURNAL_QUEUE = '__kst_hybrid_journal';

export type JournalEntry =
  /** `json` null: the key was deleted. `atMs`: absolute expiry (client clock), null = none. */
  | { t: 'kv'; key: string; json: string | null; atMs: number | null }
  /** `session` null: ended. */
  | { t: 'session'; id: string; session: Session | null }
  | { t: 'token'; token: StoredToken }
  | { t: 'revoke'; id: string }
  | { t: 'audit'; entry: AuditEntry }
  /** Messages of `queue` wait in the source backend: move them to the target. */
  | { t: 'queue'; queue: string }
  | { t: 'event'; channel: string; json: string; maxHistory: number }
  /** `connection` null: removed. */
  | { t: 'conn'; id: string; connection: Connection | null };

export interface JournalRecord {
  v: 1;
  /** The backend the entry must reach. */
  target: BackendName;
  entry: JournalEntry;
}

/** Applies one entry to `target`, reading `source` where the entry points at data (queues). */
export async function applyEntry(
  entry: JournalEntry,
  target: Driver,
  source: Driver,
  hooks: { sessionChanged?: (clusterId: string) => Promise<void> } = {},
): Promise<'done' | 'pending'> {
  switch (entry.t) {
    case 'kv':
      if (entry.json === null) await target.kv.delete(entry.key);
      else
        await target.kv.set(
          entry.key,
          entry.json,
          entry.atMs === null ? undefined : { atMs: entry.atMs },
          undefined,
        );
      return 'done';
    case 'session': {
      if (entry.session === null) {
        const before = await target.sessions.get(entry.id);
        await target.sessions.end(entry.id);
        if (before) await hooks.sessionChanged?.(before.clusterId);
        return 'done';
      }
      const s = entry.session;
      const ttlMs = Date.parse(s.expiresAt) - Date.now();
      if (ttlMs <= 0) {
        await target.sessions.end(s.sessionId);
      } else {
        // keepAlive first: the session stays live on the target throughout (no end/create gap).
        const kept = await target.sessions.keepAlive(s.sessionId, ttlMs);
        if (!kept) {
          await target.sessions.create({
            sessionId: s.sessionId,
            clusterId: s.clusterId,
            userId: s.userId,
            correlationId: s.correlationId,
            serviceIdentity: s.serviceIdentity,
            dataJson: JSON.stringify(s.data),
            ttlMs,
          });
        }
      }
      await hooks.sessionChanged?.(s.clusterId);
      return 'done';
    }
    case 'token':
      if (!(await target.tokens.findByHash(entry.token.hash))) {
        try {
          await target.tokens.insert(entry.token);
        } catch (error) {
          // Inserted meanwhile (a replay running twice): the record is there, which is the goal.
          if (!(await target.tokens.findByHash(entry.token.hash))) throw error;
        }
      }
      return 'done';
    case 'revoke':
      await target.tokens.revoke(entry.id);
      return 'done';
    case 'audit': {
      const e = entry.entry;
      await target.audit.append({
        identity: e.identity,
        action: e.action,
        resource: e.resource,
        correlationId: e.correlationId,
        outcome: e.outcome,
        detailsJson: e.details === null ? null : JSON.stringify(e.details),
      });
      return 'done';
    }
    case 'queue':
      return moveQueue(entry.queue, source, target);
    case 'event':
      await target.events.publish(entry.channel, entry.json, entry.maxHistory);
      return 'done';
    case 'conn': {
      const c = entry.connection;
      const ttlMs = c === null ? 0 : Date.parse(c.expiresAt) - Date.now();
      if (c === null || ttlMs <= 0) {
        await target.connections.remove(entry.id);
        return 'done';
      }
      await target.connections.register({
        connectionId: c.connectionId,
        identity: c.identity,
        scopes: c.scopes,
        resources: c.resources,
        ttlMs,
      });
      for (const channel of c.channels) await target.connections.subscribe(c.connectionId, channel, 100);
      return 'done';
    }
  }
}

/**
 * Moves every visible message of `queue` from `source` to `target`, at least once: each is
 * sent to the target with a dedup id derived from its source id, then acked on the source, so
 * a crash in between re-sends it within the dedup window as a duplicate the target drops.
 * Answers `pending` while the source still holds delayed or leased messages (a receiver that
 * leased one during the outage acks it on the source, by its receipt; one whose lease ends is
 * moved by a later pass).
 */
async function moveQueue(queue: string, source: Driver, target: Driver): Promise<'done' | 'pending'> {
  for (;;) {
    const batch = await source.queues.receive(queue, 100, 60_000, 0);
    if (batch.length === 0) break;
    for (const message of batch) {
      await target.queues.send(queue, JSON.stringify(message.payload), 0, `kst-hybrid-move:${message.id}`);
      await source.queues.ack(queue, message.id, message.receipt);
    }
  }
  const stats = await source.queues.stats(queue);
  return stats.depth + stats.inFlight > 0 ? 'pending' : 'done';
}
