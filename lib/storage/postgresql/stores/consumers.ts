/**
 * The queue consumers' registry on PostgreSQL (driver.ts, `ConsumerDriver`;
 * 0006_queue_consumers.sql). A claim is one transaction that first takes a transaction-scoped
 * advisory lock on its queue, so claims of one queue run one after another and never pass a
 * consumer's `max` (the lock is released at commit, which also holds behind a transaction
 * pooler). `stop` and `bind` take the same lock, so a slot is never bound to a consumer a
 * concurrent stop has just ended. Other operations are one statement each.
 */
import { type ConsumerDriver, compareBytes } from '../../driver.js';
import type { HeldDelivery, QueueConsumer } from '../../types.js';
import type { SqlExecutor } from '../sql.js';
import type { StoreContext } from './context.js';

export function pgConsumers(ctx: StoreContext): ConsumerDriver {
  const { table: t, query, transaction } = ctx;
  const consumers = t('queue_consumers');
  const deliveries = t('queue_deliveries');
  // Two int4 keys: a space apart from the migrations' bigint lock.
  const lockQueue = (tx: SqlExecutor, queue: string) =>
    tx.query('SELECT pg_advisory_xact_lock(hashtext($1::text), hashtext($2::text))', [consumers, queue]);

  const stopIn = async (tx: SqlExecutor, queue: string, connectionId: string, nowMs: number) => {
    await lockQueue(tx, queue);
    await tx.query(`DELETE FROM ${consumers} WHERE queue = $1 AND connection_id = $2`, [queue, connectionId]);
    const rows = await tx.query<{ delivery_key: string; receipt: string; lease_ends_ms: string }>(
      `DELETE FROM ${deliveries} WHERE queue = $1 AND connection_id = $2
       RETURNING delivery_key, receipt, lease_ends_ms`,
      [queue, connectionId],
    );
    return rows
      .filter((row) => row.receipt !== '' && Number(row.lease_ends_ms) > nowMs)
      .map((row): HeldDelivery => ({ queue, connectionId, id: row.delivery_key, receipt: row.receipt }))
      .sort((a, b) => compareBytes(a.id, b.id));
  };

  return {
    async register(queue, connectionId, max, visibilityMs) {
      await query(
        `INSERT INTO ${consumers} (queue, connection_id, max_in_flight, visibility_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (queue, connection_id) DO UPDATE
           SET max_in_flight = EXCLUDED.max_in_flight, visibility_ms = EXCLUDED.visibility_ms`,
        [queue, connectionId, max, visibilityMs],
      );
    },
    async claim(queue, slot, nowMs) {
      return transaction(async (tx) => {
        await lockQueue(tx, queue);
        await tx.query(`DELETE FROM ${deliveries} WHERE queue = $1 AND lease_ends_ms <= $2`, [queue, nowMs]);
        const [row] = await tx.query<{ connection_id: string; visibility_ms: string }>(
          `WITH load AS (
             SELECT connection_id, count(*)::int AS n FROM ${deliveries} WHERE queue = $1 GROUP BY connection_id
           ), pick AS (
             SELECT c.connection_id FROM ${consumers} c LEFT JOIN load l USING (connection_id)
             WHERE c.queue = $1 AND coalesce(l.n, 0) < c.max_in_flight
             ORDER BY coalesce(l.n, 0), c.last_claim_ms, c.connection_id LIMIT 1
           )
           UPDATE ${consumers} c SET last_claim_ms = $2 FROM pick
           WHERE c.queue = $1 AND c.connection_id = pick.connection_id
           RETURNING c.connection_id, c.visibility_ms`,
          [queue, nowMs],
        );
        if (!row) return undefined;
        const visibilityMs = Number(row.visibility_ms);
        await tx.query(
          `INSERT INTO ${deliveries} (queue, delivery_key, connection_id, receipt, lease_ends_ms)
           VALUES ($1, $2, $3, '', $4)`,
          [queue, slot, row.connection_id, nowMs + visibilityMs],
        );
        return { connectionId: row.connection_id, visibilityMs };
      });
    },
    async bind(queue, slot, id, receipt, leaseEndsMs) {
      return transaction(async (tx) => {
        await lockQueue(tx, queue);
        const [pending] = await tx.query<{ connection_id: string }>(
          `DELETE FROM ${deliveries} WHERE queue = $1 AND delivery_key = $2 RETURNING connection_id`,
          [queue, slot],
        );
        if (!pending) return false;
        await tx.query(
          `INSERT INTO ${deliveries} (queue, delivery_key, connection_id, receipt, lease_ends_ms)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (queue, delivery_key) DO UPDATE SET connection_id = EXCLUDED.connection_id,
             receipt = EXCLUDED.receipt, lease_ends_ms = EXCLUDED.lease_ends_ms`,
          [queue, id, pending.connection_id, receipt, leaseEndsMs],
        );
        return true;
      });
    },
    async release(queue, key) {
      const [row] = await query<{ connection_id: string }>(
        `DELETE FROM ${deliveries} WHERE queue = $1 AND delivery_key = $2 RETURNING connection_id`,
        [queue, key],
      );
      return row?.connection_id;
    },
    async extend(queue, id, leaseEndsMs) {
      const rows = await query(
        `UPDATE ${deliveries} SET lease_ends_ms = $3 WHERE queue = $1 AND delivery_key = $2 RETURNING 1`,
        [queue, id, leaseEndsMs],
      );
      return rows.length > 0;
    },
    stop: (queue, connectionId, nowMs) => transaction((tx) => stopIn(tx, queue, connectionId, nowMs)),
    async removeConnection(connectionId, nowMs) {
      const rows = await query<{ queue: string }>(
        `SELECT queue FROM ${consumers} WHERE connection_id = $1
         UNION SELECT queue FROM ${deliveries} WHERE connection_id = $1`,
        [connectionId],
      );
      const held: HeldDelivery[] = [];
      for (const queue of rows.map((row) => row.queue).sort(compareBytes))
        held.push(...(await transaction((tx) => stopIn(tx, queue, connectionId, nowMs))));
      return held;
    },
    async queues(limit) {
      const rows = await query<{ queue: string }>(
        `SELECT DISTINCT queue FROM ${consumers} ORDER BY queue LIMIT $1`,
        [limit],
      );
      return rows.map((row) => row.queue);
    },
    async connections(after, limit) {
      const rows = await query<{ connection_id: string }>(
        `SELECT DISTINCT connection_id FROM ${consumers} WHERE connection_id > $1 ORDER BY connection_id LIMIT $2`,
        [after, limit],
      );
      return rows.map((row) => row.connection_id);
    },
    async list(queue, nowMs) {
      const rows = await query<{
        connection_id: string;
        max_in_flight: number;
        visibility_ms: string;
        in_flight: string[];
      }>(
        `SELECT c.connection_id, c.max_in_flight, c.visibility_ms,
           ARRAY(SELECT d.delivery_key FROM ${deliveries} d
                 WHERE d.queue = c.queue AND d.connection_id = c.connection_id AND d.receipt <> ''
                   AND d.lease_ends_ms > $2 ORDER BY d.delivery_key) AS in_flight
         FROM ${consumers} c WHERE c.queue = $1 ORDER BY c.connection_id`,
        [queue, nowMs],
      );
      return rows.map(
        (row): QueueConsumer => ({
          connectionId: row.connection_id,
          queue,
          max: Number(row.max_in_flight),
          visibilityTimeout: Number(row.visibility_ms) / 1000,
          inFlight: row.in_flight,
        }),
      );
    },
  };
}
