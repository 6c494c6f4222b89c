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

import { MAX_CHANNELS_PER_CONNECTION } from '../../limits.js';
import type { Driver, StoredToken } from '../driver.js';
import type { AuditEntry, Connection, Session } from '../types.js';
import type { BackendName } from './settings.js';

/**
 * The journal queues in each backend (reserved queue names). State entries (kv, sessions,
 * tokens, connections: what a later write can overwrite) and appends (queue moves, events,
 * audit: nothing overwrites them) wait in separate queues, so that a direct write needs to look
 * only at the first to know whether a replay could still undo it.
 */
export const JOURNAL_QUEUE = '__kst_hybrid_journal';
export const APPEND_JOURNAL_QUEUE = '__kst_hybrid_journal_append';
export const JOURNAL_QUEUES = [JOURNAL_QUEUE, APPEND_JOURNAL_QUEUE] as const;

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

/** The journal queue an entry waits in. */
export function journalQueueOf(entry: JournalEntry): string {
  return entry.t === 'queue' || entry.t === 'event' || entry.t === 'audit'
    ? APPEND_JOURNAL_QUEUE
    : JOURNAL_QUEUE;
}

/** The item an entry changes: mirrors of one item are applied in order. */
export function itemOf(entry: JournalEntry): string {
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

export interface JournalRecord {
  v: 1;
  /** The backend the entry must reach. */
  target: BackendName;
  /**
   * `fallback` (default): a write the fallback took for a primary that was down; the entry is
   * the write's result, replayed as it is. `mirror`: a dual-write the secondary missed; the
   * item's *current* state is copied from the source at replay, so a mirror that succeeded
   * later is never overwritten by an older journaled one. `ordered`: a write the primary took
   * directly while older entries for it still waited in this journal; replayed as it is, after
   * them, so the replay ends on it (the fallback holds no copy of it to remove).
   */
  kind?: 'fallback' | 'mirror' | 'ordered';
  entry: JournalEntry;
}

/**
 * For a `mirror` record: the entry as the source holds the item now (kv, sessions, tokens,
 * connections); other entries are returned unchanged.
 */
export async function currentState(entry: JournalEntry, source: Driver): Promise<JournalEntry> {
  switch (entry.t) {
    case 'kv': {
      const now = await source.kv.getEntry(entry.key);
      return {
        t: 'kv',
        key: entry.key,
        json: now === undefined ? null : JSON.stringify(now.value),
        atMs: now?.expiresAt ? Date.parse(now.expiresAt) : null,
      };
    }
    case 'session':
      return { t: 'session', id: entry.id, session: (await source.sessions.get(entry.id)) ?? null };
    case 'token': {
      const live = await source.tokens.findByHash(entry.token.hash);
      return live ? { t: 'token', token: live } : { t: 'revoke', id: entry.token.id };
    }
    case 'conn':
      return { t: 'conn', id: entry.id, connection: (await source.connections.get(entry.id)) ?? null };
    default:
      return entry;
  }
}

/** Whether `key` on `d` holds the value written as `json` (compared as values, not as text). */
export async function holdsValue(d: Driver, key: string, json: string): Promise<boolean> {
  const now = await d.kv.getEntry(key);
  return now !== undefined && JSON.stringify(now.value) === JSON.stringify(JSON.parse(json));
}

/**
 * After a fallback entry reached the primary, the fallback's own copy is removed, so a later
 * outage does not serve it stale (a token revoked on the primary meanwhile must not verify on
 * the fallback). Best effort; a kv key is removed only while it still holds the replayed value.
 */
export async function cleanSource(entry: JournalEntry, source: Driver): Promise<void> {
  switch (entry.t) {
    case 'kv': {
      if (entry.json !== null && (await holdsValue(source, entry.key, entry.json))) {
        await source.kv.delete(entry.key);
      }
      return;
    }
    case 'session':
      if (entry.session) await source.sessions.end(entry.id);
      return;
    case 'token':
      await source.tokens.revoke(entry.token.id);
      return;
    case 'conn':
      if (entry.connection) await source.connections.remove(entry.id);
      return;
    default:
      return;
  }
}

export interface ApplyHooks {
  sessionChanged?: (clusterId: string) => Promise<void>;
  /**
   * Awaited before every write to the target; throws to stop (a reconciler whose journal lock
   * may have passed to another makes no further write, not even the second of one entry).
   */
  guard?: () => Promise<void>;
}

type SessionEntry = Extract<JournalEntry, { t: 'session' }>;
type TokenEntry = Extract<JournalEntry, { t: 'token' }>;
type AuditJournalEntry = Extract<JournalEntry, { t: 'audit' }>;
type ConnectionEntry = Extract<JournalEntry, { t: 'conn' }>;
type Guard = () => Promise<void>;

/** Applies one entry to `target`, reading `source` where the entry points at data (queues). */
export async function applyEntry(
  entry: JournalEntry,
  target: Driver,
  source: Driver,
  hooks: ApplyHooks = {},
): Promise<'done' | 'pending'> {
  const guard = hooks.guard ?? (async () => {});
  switch (entry.t) {
    case 'kv':
      await guard();
      if (entry.json === null) await target.kv.delete(entry.key);
      else
        await target.kv.set(
          entry.key,
          entry.json,
          entry.atMs === null ? undefined : { atMs: entry.atMs },
          undefined,
        );
      return 'done';
    case 'session':
      await applySession(entry, target, guard, hooks.sessionChanged);
      return 'done';
    case 'token':
      return applyToken(entry, target, source, guard);
    case 'revoke':
      await guard();
      await target.tokens.revoke(entry.id);
      return 'done';
    case 'audit':
      await applyAudit(entry, target, guard);
      return 'done';
    case 'queue':
      return moveQueue(entry.queue, source, target, guard);
    case 'event':
      await guard();
      await target.events.publish(entry.channel, entry.json, entry.maxHistory);
      return 'done';
    case 'conn':
      await applyConnection(entry, target, guard);
      return 'done';
  }
}

async function applySession(
  entry: SessionEntry,
  target: Driver,
  guard: Guard,
  sessionChanged: ApplyHooks['sessionChanged'],
): Promise<void> {
  if (entry.session === null) {
    const before = await target.sessions.get(entry.id);
    await guard();
    await target.sessions.end(entry.id);
    if (before) await sessionChanged?.(before.clusterId);
    return;
  }
  const s = entry.session;
  const ttlMs = Date.parse(s.expiresAt) - Date.now();
  await guard();
  if (ttlMs <= 0) {
    await target.sessions.end(s.sessionId);
  } else {
    // The source's own times, not the target's clock when this runs (a mirror may wait).
    const times = {
      createdAtMs: Date.parse(s.createdAt),
      lastActivityMs: Date.parse(s.lastActivity),
      expiresAtMs: Date.parse(s.expiresAt),
    };
    // keepAlive first: the session stays live on the target throughout (no end/create gap).
    const kept = await target.sessions.keepAlive(s.sessionId, ttlMs, times);
    if (!kept) {
      await guard();
      await target.sessions.create({
        sessionId: s.sessionId,
        clusterId: s.clusterId,
        userId: s.userId,
        correlationId: s.correlationId,
        serviceIdentity: s.serviceIdentity,
        dataJson: JSON.stringify(s.data),
        ttlMs,
        times,
      });
    }
  }
  await sessionChanged?.(s.clusterId);
}

async function applyToken(
  { token }: TokenEntry,
  target: Driver,
  source: Driver,
  guard: Guard,
): Promise<'done' | 'pending'> {
  if (await target.tokens.findByHash(token.hash)) return 'done';
  await guard();
  let inserted: boolean;
  try {
    inserted = await target.tokens.insert(token);
  } catch (error) {
    // Inserted meanwhile (a replay running twice): the record is there, which is the goal.
    if (!(await target.tokens.findByHash(token.hash))) throw error;
    return 'done';
  }
  // Refused under an issuer the target does not hold live: revoked there (the token goes
  // with it, as a revoke wants), or not arrived yet while the source still holds it live.
  if (!inserted && token.issuerId !== null && (await source.tokens.findById(token.issuerId))) {
    return 'pending';
  }
  return 'done';
}

async function applyAudit({ entry: e }: AuditJournalEntry, target: Driver, guard: Guard): Promise<void> {
  await guard();
  await target.audit.append({
    identity: e.identity,
    action: e.action,
    resource: e.resource,
    correlationId: e.correlationId,
    outcome: e.outcome,
    detailsJson: e.details === null ? null : JSON.stringify(e.details),
    atMs: Date.parse(e.at),
  });
}

async function applyConnection(entry: ConnectionEntry, target: Driver, guard: Guard): Promise<void> {
  const c = entry.connection;
  const ttlMs = c === null ? 0 : Date.parse(c.expiresAt) - Date.now();
  await guard();
  if (c === null || ttlMs <= 0) {
    await target.connections.remove(entry.id);
    return;
  }
  // Not counted against the token's limit: the source admitted it. Entries journaled before
  // connections recorded their token carry none ('' never verifies, so the next frame closes it).
  await target.connections.register({
    connectionId: c.connectionId,
    identity: c.identity,
    scopes: c.scopes,
    resources: c.resources,
    tokenId: c.tokenId ?? '',
    tokenExpiresAtMs: c.tokenExpiresAt ? Date.parse(c.tokenExpiresAt) : null,
    ttlMs,
  });
  for (const channel of c.channels) {
    await guard();
    await target.connections.subscribe(c.connectionId, channel, MAX_CHANNELS_PER_CONNECTION);
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
async function moveQueue(
  queue: string,
  source: Driver,
  target: Driver,
  guard: () => Promise<void>,
): Promise<'done' | 'pending'> {
  for (;;) {
    await guard();
    const batch = await source.queues.receive(queue, 100, 60_000, 0);
    if (batch.length === 0) break;
    for (const [index, message] of batch.entries()) {
      try {
        await guard();
        await target.queues.send(queue, JSON.stringify(message.payload), 0, `kst-hybrid-move:${message.id}`);
        await source.queues.ack(queue, message.id, message.receipt);
      } catch (error) {
        // Not left leased for the minute: the next pass moves them (a message the target
        // already took is dropped there as a duplicate by its dedup id).
        for (const rest of batch.slice(index)) {
          await source.queues.nack(queue, rest.id, rest.receipt, 0).catch(() => {});
        }
        throw error;
      }
    }
  }
  const stats = await source.queues.stats(queue);
  return stats.depth + stats.inFlight > 0 ? 'pending' : 'done';
}
