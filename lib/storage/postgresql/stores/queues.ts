import { randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError } from '../../../errors.js';
import { isoTime as iso, type QueueDriver } from '../../driver.js';
import type { DeadMessage, ReceivedMessage } from '../../types.js';
import { parseJson } from '../../validate.js';
import { Batcher, KeyedBatcher } from '../batcher.js';
import type { Row } from '../sql.js';
import { MAX_BATCH, ms, msInterval, NOW_MS, num, type StoreContext, sum, UUID } from './context.js';

type MessageRow = {
  id: string;
  receipt: string | null;
  payload: string;
  attempts: number;
  state: 'ready' | 'leased' | 'dead';
  enqueued: number;
  died: number | null;
  seq: number;
};

export function pgQueues(ctx: StoreContext) {
  const { config, table: t, query, wakeups, state } = ctx;
  const channel = ctx.channels.queues;
  const q = t('queues');
  const dedup = t('queue_dedup');
  const maxAttempts = config.queues.maxAttempts;
  const dedupWindowMs = Math.round(config.queues.dedupWindow * 1000);
  const pollMs = Math.round(config.postgresql.pollInterval * 1000);
  /** In-process waiters per queue, woken by a notification or when the storage closes. */
  const waiters = new Map<string, Set<() => void>>();
  /** Notifications seen per queue (and in all, for reconnects): a receive that saw one while claiming looks again at once. */
  const signals = new Map<string, number>();
  let reconnects = 0;
  const signalOf = (queue: string) => `${signals.get(queue) ?? 0}:${reconnects}`;
  const wake = (queue: string | undefined) => {
    if (queue === undefined) {
      reconnects++;
      for (const set of waiters.values()) for (const w of set) w();
      return;
    }
    if (waiters.has(queue)) signals.set(queue, (signals.get(queue) ?? 0) + 1);
    for (const w of waiters.get(queue) ?? []) w();
  };
  /**
   * A CTE that notifies waiters of `$queueParam` when `source` answers a row. Sent whether or not
   * this process listens: another may (a worker on a direct connection while Lambdas use a pooler).
   */
  const notifyCte = (source: string, queueParam: string) =>
    `, n AS (SELECT pg_notify('${channel}', ${queueParam}) FROM ${source} LIMIT 1)`;
  const notified = ', (SELECT count(*) FROM n)::int AS notified';
  /** A lease that ended on the last attempt is dead, whatever wrote it there: its receipt no longer counts. */
  const LEASE_LIVE = `state = 'leased' AND (visible_at > now() OR attempts < $4)`;

  /** Why a lease call matched no row: NotFoundError for an unknown message, else ConflictError. */
  const leaseError = async (queue: string, id: string): Promise<never> => {
    const known =
      UUID.test(id) && (await query(`SELECT 1 FROM ${q} WHERE id = $1 AND queue = $2`, [id, queue]));
    if (!known || known.length === 0) throw new NotFoundError(`message ${id} not found`);
    throw new ConflictError(`receipt for message ${id} is stale: the lease ended`);
  };
  /** Runs a lease statement (params: queue, id, receipt, …) and answers its row, or throws why there is none. */
  const leased = async <R extends Row>(
    text: string,
    queue: string,
    id: string,
    receipt: string,
    params: unknown[],
  ) => {
    if (UUID.test(id) && UUID.test(receipt)) {
      const [row] = await query<R>(text, [queue, id, receipt, ...params]);
      if (row) return row;
    }
    return leaseError(queue, id);
  };
  /** Leases whose time ran out on their last attempt become dead letters (died when the lease ended). */
  const settle = (queue: string) =>
    query(
      `UPDATE ${q} SET state = 'dead', receipt = NULL, died_at = visible_at
       WHERE queue = $1 AND state = 'leased' AND visible_at <= now() AND attempts >= $2`,
      [queue, maxAttempts],
    );
  const claimNow = async (queue: string, max: number, visibilityMs: number): Promise<ReceivedMessage[]> => {
    const rows = await query<MessageRow>(
      // Candidates, unlocked: the first waiting messages in FIFO order and the first ended leases,
      // each from its own index (with headroom for rows other receivers are taking). Then only
      // the rows picked, in enqueue order, are locked; rows other receivers hold are skipped,
      // never waited for.
      `WITH candidates AS MATERIALIZED (
         (SELECT id, seq FROM ${q}
          WHERE queue = $1 AND state = 'ready' AND visible_at <= now() ORDER BY seq LIMIT $5)
         UNION ALL
         (SELECT id, seq FROM ${q}
          WHERE queue = $1 AND state = 'leased' AND visible_at <= now() ORDER BY visible_at LIMIT $5)
       ), picked AS MATERIALIZED (
         SELECT m.id FROM ${q} AS m JOIN candidates AS c ON c.id = m.id
         WHERE m.queue = $1 AND m.state <> 'dead' AND m.visible_at <= now()
         ORDER BY c.seq LIMIT $2
         FOR UPDATE OF m SKIP LOCKED
       )
       UPDATE ${q} AS m SET
         state = CASE WHEN m.attempts >= $4 THEN 'dead' ELSE 'leased' END,
         attempts = CASE WHEN m.attempts >= $4 THEN m.attempts ELSE m.attempts + 1 END,
         receipt = CASE WHEN m.attempts >= $4 THEN NULL ELSE gen_random_uuid() END,
         visible_at = CASE WHEN m.attempts >= $4 THEN m.visible_at ELSE now() + ${msInterval('$3')} END,
         died_at = CASE WHEN m.attempts >= $4 THEN m.visible_at END
       FROM picked WHERE m.id = picked.id
       RETURNING m.id::text AS id, m.receipt::text AS receipt, m.payload, m.attempts, m.state,
         ${ms('m.enqueued_at')} AS enqueued, m.seq::float8 AS seq`,
      [queue, max, visibilityMs, maxAttempts, max * 4 + 64],
    );
    const delivered = rows.filter((r) => r.state === 'leased').sort((a, b) => num(a.seq) - num(b.seq));
    const messages = delivered.map(
      (r): ReceivedMessage => ({
        id: r.id,
        receipt: r.receipt!,
        payload: parseJson(r.payload),
        attempts: num(r.attempts),
        enqueuedAt: iso(num(r.enqueued)),
      }),
    );
    // Messages that died on the way took places: look again for the rest.
    if (delivered.length < rows.length && messages.length < max)
      messages.push(...(await claimNow(queue, max - messages.length, visibilityMs)));
    return messages;
  };
  /**
   * Receivers of one queue and lease length claiming at the same moment share one statement:
   * the first messages in FIFO order, handed out in turn, each receiver its `max` at most.
   */
  const claims = new KeyedBatcher<number, ReceivedMessage[]>(async (key, wants) => {
    const cut = key.lastIndexOf('\0');
    const got = await claimNow(key.slice(0, cut), sum(wants), Number(key.slice(cut + 1)));
    let at = 0;
    return wants.map((want) => {
      const mine = got.slice(at, at + want);
      at += want;
      return mine;
    });
  }, MAX_BATCH);
  const claim = (queue: string, max: number, visibilityMs: number) =>
    claims.add(`${queue}\0${visibilityMs}`, max);
  /** Concurrent acks go out as one DELETE; each answers whether its message was removed. */
  const acks = new Batcher<{ queue: string; id: string; receipt: string }, boolean>(async (items) => {
    const rows = await query<{ id: string }>(
      `DELETE FROM ${q} AS m
       USING unnest($1::text[], $2::uuid[], $3::uuid[]) AS a(queue, id, receipt)
       WHERE m.id = a.id AND m.queue = a.queue AND m.receipt = a.receipt
         AND m.state = 'leased' AND (m.visible_at > now() OR m.attempts < $4)
       RETURNING m.id::text AS id`,
      [items.map((i) => i.queue), items.map((i) => i.id), items.map((i) => i.receipt), maxAttempts],
    );
    // A message acked twice in one batch is removed once: the first of its acks counts.
    const removed = new Set(rows.map((r) => r.id));
    return items.map((i) => removed.delete(i.id));
  }, MAX_BATCH);
  /** Concurrent sends without a dedupId go out as one INSERT (ids in `items` order, so FIFO holds). */
  const sends = new Batcher<{ id: string; queue: string; json: string; delayMs: number }, void>(
    async (items) => {
      // A delayed message notifies too: waiters then know when to look again.
      await query(
        `WITH m AS (
           INSERT INTO ${q} (id, queue, payload, enqueued_at, visible_at)
           SELECT i.id, i.queue, i.payload, ${NOW_MS}, now() + ${msInterval('i.delay')}
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::float8[]) WITH ORDINALITY
             AS i(id, queue, payload, delay, n)
           ORDER BY i.n
           RETURNING queue
         ), n AS (SELECT pg_notify('${channel}', queue) FROM (SELECT DISTINCT queue FROM m) AS d)
         SELECT (SELECT count(*) FROM n)::int AS notified`,
        [
          items.map((i) => i.id),
          items.map((i) => i.queue),
          items.map((i) => i.json),
          items.map((i) => i.delayMs),
        ],
      );
      return items.map(() => undefined);
    },
    MAX_BATCH,
  );
  /** Milliseconds until something in `queue` becomes visible by itself (a delay or lease ending). */
  const nextDue = async (queue: string): Promise<number> => {
    const [row] = await query<{ due: number | null }>(
      `SELECT ${ms(`least(
         (SELECT min(visible_at) FROM ${q} WHERE queue = $1 AND state = 'ready'),
         (SELECT min(visible_at) FROM ${q} WHERE queue = $1 AND state = 'leased'))`)} - ${ms('now()')} AS due`,
      [queue],
    );
    return row?.due === null || row?.due === undefined ? Number.POSITIVE_INFINITY : num(row.due);
  };
  const stopWaking = wakeups.handle(channel, wake);
  const sleep = (queue: string, delayMs: number) =>
    new Promise<void>((resolve) => {
      let set = waiters.get(queue);
      if (!set) {
        set = new Set();
        waiters.set(queue, set);
      }
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && waiters.get(queue) === set) waiters.delete(queue);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, delayMs));
      set.add(done);
    });

  const driver: QueueDriver = {
    async send(queue, json, delayMs, dedupId) {
      const id = randomUUID();
      const insert = (from: string) =>
        `INSERT INTO ${q} (id, queue, payload, enqueued_at, visible_at)
         SELECT $1::uuid, $2::text, $3::text, ${NOW_MS}, now() + ${msInterval('$4')} ${from} RETURNING id`;
      if (dedupId === undefined) {
        await sends.add({ id, queue, json, delayMs });
        return { id, duplicate: false };
      }
      for (let attempt = 0; ; attempt++) {
        // The dedup row is claimed (new, or replacing one whose window ended) and the message
        // inserted in one statement; a live dedup row answers the message first sent with it.
        const [row] = await query<{ sent: number; existing: string | null }>(
          `WITH d AS (
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
          [id, queue, json, delayMs, dedupId, dedupWindowMs],
        );
        if (num(row?.sent) === 1) return { id, duplicate: false };
        if (row?.existing) return { id: row.existing, duplicate: true };
        // A concurrent send committed the dedup row after this statement's snapshot (the stale
        // row it replaced does not count: its window ended): look again with a new snapshot.
        if (attempt >= 5) throw new ConflictError(`dedupId ${JSON.stringify(dedupId)} is contended; retry`);
      }
    },
    async receive(queue, max, visibilityMs, waitMs) {
      if (waitMs === 0) return claim(queue, max, visibilityMs);
      const deadline = Date.now() + waitMs;
      // Notifications wake this wait at once; until they flow (or without them) it polls.
      await wakeups.listen(channel, Math.min(waitMs, 2000));
      // A slot in the queue's waiters for the whole call, so notifications are counted from now.
      let mine = waiters.get(queue);
      if (!mine) {
        mine = new Set();
        waiters.set(queue, mine);
      }
      const keep = () => {};
      mine.add(keep);
      try {
        for (;;) {
          // A storage closed while this call waited answers what a wait without messages does.
          if (state.closed) return [];
          const mark = signalOf(queue);
          const got = await claim(queue, max, visibilityMs);
          if (got.length > 0) return got;
          const now = Date.now();
          if (now >= deadline || state.closed) return [];
          const due = await nextDue(queue);
          // Visible now but not claimable: other receivers hold those rows for a moment.
          const pause = due > 0 ? due : 20;
          // A notification since the claim began means something may have arrived: look again at once.
          if (signalOf(queue) === mark) await sleep(queue, Math.min(deadline - now, pause, pollMs));
          if (state.closed) return [];
        }
      } finally {
        mine.delete(keep);
        if (mine.size === 0 && waiters.get(queue) === mine) {
          waiters.delete(queue);
          signals.delete(queue);
        }
      }
    },
    async ack(queue, id, receipt) {
      if (UUID.test(id) && UUID.test(receipt) && (await acks.add({ queue, id, receipt }))) return;
      await leaseError(queue, id);
    },
    async nack(queue, id, receipt, delayMs) {
      await leased(
        `WITH u AS (
           UPDATE ${q} SET
             state = CASE WHEN attempts >= $4 THEN 'dead' ELSE 'ready' END,
             receipt = NULL,
             visible_at = CASE WHEN attempts >= $4 THEN visible_at ELSE now() + ${msInterval('$5')} END,
             died_at = CASE WHEN attempts >= $4 THEN ${NOW_MS} END
           WHERE id = $2 AND queue = $1 AND receipt = $3 AND ${LEASE_LIVE}
           RETURNING state
         )${notifyCte("u WHERE state = 'ready'", '$1')}
         SELECT state${notified} FROM u`,
        queue,
        id,
        receipt,
        [maxAttempts, delayMs],
      );
    },
    async extend(queue, id, receipt, visibilityMs) {
      await leased(
        // Notifies too: a shorter lease ends sooner, and waiters recompute when to look again.
        `WITH u AS (
           UPDATE ${q} SET visible_at = now() + ${msInterval('$5')}
           WHERE id = $2 AND queue = $1 AND receipt = $3 AND ${LEASE_LIVE} RETURNING 1
         )${notifyCte('u', '$1')}
         SELECT 1${notified} FROM u`,
        queue,
        id,
        receipt,
        [maxAttempts, visibilityMs],
      );
    },
    async stats(queue) {
      // Each state counted from its own index. Leases that ended count as waiting (or dead on
      // their last attempt), without writing.
      const [row] = await query<
        Record<'ready' | 'delayed' | 'inflight' | 'ended' | 'spent' | 'dead', number>
      >(
        `SELECT
           (SELECT count(*) FROM ${q} WHERE queue = $1 AND state = 'ready')::int AS ready,
           (SELECT count(*) FROM ${q} WHERE queue = $1 AND state = 'ready' AND visible_at > now())::int AS delayed,
           l.inflight, l.ended, l.spent,
           (SELECT count(*) FROM ${q} WHERE queue = $1 AND state = 'dead')::int AS dead
         FROM (
           SELECT count(*) FILTER (WHERE visible_at > now())::int AS inflight,
             count(*) FILTER (WHERE visible_at <= now() AND attempts < $2)::int AS ended,
             count(*) FILTER (WHERE visible_at <= now() AND attempts >= $2)::int AS spent
           FROM ${q} WHERE queue = $1 AND state = 'leased'
         ) AS l`,
        [queue, maxAttempts],
      );
      const n = (field: keyof NonNullable<typeof row>) => num(row?.[field] ?? 0);
      return {
        depth: n('ready') + n('ended'),
        delayed: n('delayed'),
        inFlight: n('inflight'),
        dead: n('dead') + n('spent'),
      };
    },
    async deadLetters(queue, limit) {
      await settle(queue);
      const rows = await query<MessageRow>(
        `SELECT id::text AS id, payload, attempts, ${ms('enqueued_at')} AS enqueued, ${ms('died_at')} AS died
         FROM ${q} WHERE queue = $1 AND state = 'dead' ORDER BY died_at, seq LIMIT $2`,
        [queue, limit],
      );
      return rows.map(
        (r): DeadMessage => ({
          id: r.id,
          payload: parseJson(r.payload),
          attempts: num(r.attempts),
          enqueuedAt: iso(num(r.enqueued)),
          diedAt: iso(num(r.died)),
        }),
      );
    },
    async redrive(queue, limit) {
      await settle(queue);
      const [row] = await query<{ moved: number }>(
        `WITH r AS (
           SELECT id FROM ${q} WHERE queue = $1 AND state = 'dead'
           ORDER BY died_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED
         ), u AS (
           UPDATE ${q} AS m SET state = 'ready', attempts = 0, receipt = NULL, visible_at = now(), died_at = NULL
           FROM r WHERE m.id = r.id RETURNING 1
         )${notifyCte('u', '$1')}
         SELECT (SELECT count(*) FROM u)::int AS moved${notified}`,
        [queue, limit],
      );
      return num(row?.moved ?? 0);
    },
  };
  return {
    driver,
    close() {
      wake(undefined);
      stopWaking();
    },
  };
}
