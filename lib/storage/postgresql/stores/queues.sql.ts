/**
 * The queue store's statements, built once per storage from its tables and NOTIFY channel (as
 * pg-boss keeps its "plans" apart from the code that runs them). Values are always parameters;
 * each plan says what its `$n` are.
 *
 * Layout (0001_initial.sql, 0007_queue_hot_claims.sql): a message is live (`state <> 'dead'`)
 * or dead; a live message is leased while it has a `receipt`, and is visible from
 * `visible_at` (its delay, or the end of its lease). A claim, an extend and a nack write only
 * columns no index covers, so they are HOT updates: no index entries, no vacuum.
 */
import type { StorageConfig } from '../../../config/index.js';
import { ms, msInterval, NOW_MS } from './context.js';

/** Rows of the live index (the head of a queue) that `nextDue` looks at. */
const NEXT_DUE_SCAN = 1000;

/**
 * The select-list item that makes its statement's commit asynchronous: `synchronous_commit` off
 * for this transaction only (so it holds behind a transaction pooler too), set by the statement
 * itself, without a round trip of its own. The commit then does not wait for the write-ahead
 * log to reach disk; the server writes it out within a few `wal_writer_delay`s (200 ms each by
 * default). Only for lease writes, whose loss in a crash means a redelivery (reliability.md).
 */
export const ASYNC_COMMIT = `(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit`;

export function queuePlans(
  queuesTable: string,
  dedup: string,
  channel: string,
  leaseCommit: StorageConfig['postgresql']['leaseCommit'],
) {
  /** Appended to the select list of the lease writes (claim, ack, nack, extend). */
  const leaseCommitItem = leaseCommit === 'async' ? `, ${ASYNC_COMMIT}` : '';
  /**
   * A CTE that notifies waiters of `queueParam` when `source` answers a row. Sent whether or not
   * this process listens: another may (a worker on a direct connection while Lambdas use a pooler).
   */
  const notifyCte = (source: string, queueParam: string) =>
    `, n AS (SELECT pg_notify('${channel}', ${queueParam}) FROM ${source} LIMIT 1)`;
  const notified = ', (SELECT count(*) FROM n)::int AS notified';
  /** A lease that ended on the last attempt is dead, whatever wrote it there: its receipt no longer counts. */
  const leaseLive = (m: string) => `${m}state <> 'dead' AND (${m}visible_at > now() OR ${m}attempts < $4)`;
  const insert = (from: string) =>
    `INSERT INTO ${queuesTable} (id, queue, payload, enqueued_at, visible_at)
     SELECT $1::uuid, $2::text, $3::text, ${NOW_MS}, now() + ${msInterval('$4')} ${from} RETURNING id`;

  return {
    /**
     * Acknowledges messages of any queue and claims the next ones of one queue, in one statement
     * and one commit. $1 queue, $2 how many to claim (0: none), $3 lease ms, $4 maxAttempts,
     * $5/$6/$7 the acks' queues, ids and receipts. Answers the ids removed and the rows claimed
     * (as JSON text; a claimed row whose last attempt had ended comes back dead, not leased).
     *
     * The claim walks the queue's live index from its head in FIFO order, skips rows other
     * claims hold, never waits for them, and leaves out the rows this statement acknowledges (a
     * row is written once per statement). Messages on their last attempt die on the way.
     */
    ackAndClaim: `WITH acked AS (
         DELETE FROM ${queuesTable} AS m
         USING unnest($5::text[], $6::uuid[], $7::uuid[]) AS a(queue, id, receipt)
         WHERE m.id = a.id AND m.queue = a.queue AND m.receipt = a.receipt AND ${leaseLive('m.')}
         RETURNING m.id
       ), picked AS MATERIALIZED (
         SELECT id FROM ${queuesTable}
         WHERE queue = $1 AND state <> 'dead' AND visible_at <= now() AND id <> ALL ($6::uuid[])
         ORDER BY seq LIMIT $2
         FOR UPDATE SKIP LOCKED
       ), claimed AS (
         UPDATE ${queuesTable} AS m SET
           state = CASE WHEN m.attempts >= $4 THEN 'dead' ELSE m.state END,
           attempts = CASE WHEN m.attempts >= $4 THEN m.attempts ELSE m.attempts + 1 END,
           receipt = CASE WHEN m.attempts >= $4 THEN NULL ELSE gen_random_uuid() END,
           visible_at = CASE WHEN m.attempts >= $4 THEN m.visible_at ELSE now() + ${msInterval('$3')} END,
           died_at = CASE WHEN m.attempts >= $4 THEN m.visible_at END
         FROM picked WHERE m.id = picked.id
         RETURNING m.id::text AS id, m.receipt::text AS receipt, m.payload, m.attempts,
           CASE WHEN m.state = 'dead' THEN 'dead' ELSE 'leased' END AS state,
           ${ms('m.enqueued_at')} AS enqueued, m.seq::float8 AS seq
       )
       SELECT (SELECT coalesce(json_agg(id::text), '[]') FROM acked)::text AS acked,
         (SELECT coalesce(json_agg(c), '[]') FROM claimed AS c)::text AS claimed${leaseCommitItem}`,

    /** Concurrent sends without a dedupId as one INSERT, ids in order. $1 ids, $2 queues, $3 payloads, $4 delay ms. */
    sendMany:
      // A delayed message notifies too: waiters then know when to look again.
      `WITH m AS (
         INSERT INTO ${queuesTable} (id, queue, payload, enqueued_at, visible_at)
         SELECT i.id, i.queue, i.payload, ${NOW_MS}, now() + ${msInterval('i.delay')}
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::float8[]) WITH ORDINALITY
           AS i(id, queue, payload, delay, n)
         ORDER BY i.n
         RETURNING queue
       ), n AS (SELECT pg_notify('${channel}', queue) FROM (SELECT DISTINCT queue FROM m) AS d)
       SELECT (SELECT count(*) FROM n)::int AS notified`,

    /**
     * A send with a dedupId: the dedup row is claimed (new, or replacing one whose window ended)
     * and the message inserted in one statement; a live dedup row answers the message first
     * sent with it. $1 id, $2 queue, $3 payload, $4 delay ms, $5 dedupId, $6 window ms.
     */
    sendDeduplicated: `WITH d AS (
         INSERT INTO ${dedup} AS d (queue, dedup_id, message_id, expires_at)
         VALUES ($2, $5, $1, now() + ${msInterval('$6')})
         ON CONFLICT (queue, dedup_id) DO UPDATE
           SET message_id = EXCLUDED.message_id, expires_at = EXCLUDED.expires_at
           WHERE d.expires_at <= now()
         RETURNING message_id
       ), m AS (${insert('FROM d')})${notifyCte('m', '$2')}
       SELECT (SELECT count(*) FROM m)::int AS sent,
         (SELECT message_id::text FROM ${dedup}
          WHERE queue = $2 AND dedup_id = $5 AND expires_at > now()) AS existing
         ${notified}`,

    /** Whether message $1 is in queue $2 (to tell a stale receipt from an unknown message). */
    known: `SELECT 1 FROM ${queuesTable} WHERE id = $1 AND queue = $2`,

    /**
     * Milliseconds until something at the head of queue $1 becomes visible by itself (a delay or
     * a lease ending); NULL when its head holds nothing. Only the first rows are looked at: this
     * only shortens a wait, which polls and notifications bound anyway.
     */
    nextDue: `SELECT ${ms('min(visible_at)')} - ${ms('now()')} AS due FROM (
         SELECT visible_at FROM ${queuesTable} WHERE queue = $1 AND state <> 'dead' ORDER BY seq LIMIT ${NEXT_DUE_SCAN}
       ) AS head`,

    /** Ends lease $3 of message $2 in queue $1: waiting again after $5 ms, or dead on its last attempt ($4). */
    nack: `WITH u AS (
         UPDATE ${queuesTable} SET
           state = CASE WHEN attempts >= $4 THEN 'dead' ELSE 'ready' END,
           receipt = NULL,
           visible_at = CASE WHEN attempts >= $4 THEN visible_at ELSE now() + ${msInterval('$5')} END,
           died_at = CASE WHEN attempts >= $4 THEN ${NOW_MS} END
         WHERE id = $2 AND queue = $1 AND receipt = $3 AND ${leaseLive('')}
         RETURNING state
       )${notifyCte("u WHERE state = 'ready'", '$1')}
       SELECT state${notified}${leaseCommitItem} FROM u`,

    /** Lease $3 of message $2 in queue $1 ends $5 ms from now ($4 maxAttempts). */
    extend:
      // Notifies too: a shorter lease ends sooner, and waiters recompute when to look again.
      `WITH u AS (
         UPDATE ${queuesTable} SET visible_at = now() + ${msInterval('$5')}
         WHERE id = $2 AND queue = $1 AND receipt = $3 AND ${leaseLive('')} RETURNING 1
       )${notifyCte('u', '$1')}
       SELECT 1${notified}${leaseCommitItem} FROM u`,

    /**
     * Counts of queue $1 ($2 maxAttempts) in one pass over its live rows, and its dead letters
     * from their index. Leases that ended count as waiting (or dead on their last attempt),
     * without writing.
     */
    stats: `SELECT l.ready, l.delayed, l.inflight, l.ended, l.spent,
         (SELECT count(*) FROM ${queuesTable} WHERE queue = $1 AND state = 'dead')::int AS dead
       FROM (
         SELECT count(*) FILTER (WHERE receipt IS NULL)::int AS ready,
           count(*) FILTER (WHERE receipt IS NULL AND visible_at > now())::int AS delayed,
           count(*) FILTER (WHERE receipt IS NOT NULL AND visible_at > now())::int AS inflight,
           count(*) FILTER (WHERE receipt IS NOT NULL AND visible_at <= now() AND attempts < $2)::int AS ended,
           count(*) FILTER (WHERE receipt IS NOT NULL AND visible_at <= now() AND attempts >= $2)::int AS spent
         FROM ${queuesTable} WHERE queue = $1 AND state <> 'dead'
       ) AS l`,

    /** Leases of queue $1 whose time ran out on their last attempt ($2) become dead letters (died when the lease ended). */
    settle: `UPDATE ${queuesTable} SET state = 'dead', receipt = NULL, died_at = visible_at
       WHERE queue = $1 AND state <> 'dead' AND receipt IS NOT NULL AND visible_at <= now() AND attempts >= $2`,

    /** The first $2 dead letters of queue $1, in the order they died. */
    deadLetters: `SELECT id::text AS id, payload, attempts, ${ms('enqueued_at')} AS enqueued, ${ms('died_at')} AS died
       FROM ${queuesTable} WHERE queue = $1 AND state = 'dead' ORDER BY died_at, seq LIMIT $2`,

    /** Moves the first $2 dead letters of queue $1 back to waiting, attempts reset. */
    redrive: `WITH r AS (
         SELECT id FROM ${queuesTable} WHERE queue = $1 AND state = 'dead'
         ORDER BY died_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED
       ), u AS (
         UPDATE ${queuesTable} AS m SET state = 'ready', attempts = 0, receipt = NULL, visible_at = now(), died_at = NULL
         FROM r WHERE m.id = r.id RETURNING 1
       )${notifyCte('u', '$1')}
       SELECT (SELECT count(*) FROM u)::int AS moved${notified}`,
  };
}
