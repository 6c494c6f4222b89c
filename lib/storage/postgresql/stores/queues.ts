import { ConflictError, NotFoundError } from '../../../errors.js';
import { isoTime as iso, type QueueDriver } from '../../driver.js';
import type { DeadMessage } from '../../types.js';
import { parseJson } from '../../validate.js';
import type { Row } from '../sql.js';
import { num, type StoreContext, UUID } from './context.js';
import { type MessageRow, queueClaims } from './queues.claims.js';
import { queueNextDue } from './queues.next-due.js';
import { queueSends } from './queues.sends.js';
import { queuePlans } from './queues.sql.js';
import { queueWaits } from './queues.waits.js';

/**
 * The PostgreSQL queue store: the QueueDriver over the statements of queues.sql.ts. Acks and
 * claims batch in `queueClaims`, sends in `queueSends`; between claims a long poll sleeps in
 * `queueWaits` until a notification, `pollMs`, or when `queueNextDue` says something becomes
 * visible by itself.
 */
export function pgQueues(ctx: StoreContext) {
  const { config, table, query, wakeups, state } = ctx;
  const channel = ctx.channels.queues;
  const queuesTable = table('queues');
  const plans = queuePlans(queuesTable, table('queue_dedup'), channel, config.postgresql.leaseCommit);
  const maxAttempts = config.queues.maxAttempts;
  const dedupWindowMs = Math.round(config.queues.dedupWindow * 1000);
  const pollMs = Math.round(config.postgresql.pollInterval * 1000);
  const waits = queueWaits();

  /** Why a lease call matched no row: NotFoundError for an unknown message, else ConflictError. */
  const leaseError = async (queue: string, id: string): Promise<never> => {
    const known = UUID.test(id) && (await query(plans.known, [id, queue]));
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
  const settle = (queue: string) => query(plans.settle, [queue, maxAttempts]);

  const claims = queueClaims(query, plans.ackAndClaim, maxAttempts);
  const send = queueSends(query, plans, dedupWindowMs);
  const nextDue = queueNextDue(query, plans.nextDue);
  const stopWaking = wakeups.handle(channel, waits.wake);

  const driver: QueueDriver = {
    send(queue, json, delayMs, dedupId) {
      return send(queue, json, delayMs, dedupId);
    },
    async receive(queue, max, visibilityMs, waitMs) {
      if (waitMs === 0) return claims.claim(queue, max, visibilityMs);
      const deadline = Date.now() + waitMs;
      // Notifications wake this wait at once; until they flow (or without them) it polls.
      await wakeups.listen(channel, Math.min(waitMs, 2000));
      // A slot in the queue's waiters for the whole call, so notifications are counted from now.
      const release = waits.hold(queue);
      try {
        for (;;) {
          // A storage closed while this call waited answers what a wait without messages does.
          if (state.closed) return [];
          const mark = waits.signalOf(queue);
          const got = await claims.claim(queue, max, visibilityMs);
          if (got.length > 0) return got;
          const now = Date.now();
          if (now >= deadline || state.closed) return [];
          const due = await nextDue(queue);
          // Visible now but not claimable: other receivers hold those rows for a moment.
          const pause = due > 0 ? due : 20;
          // A notification since the claim began means something may have arrived: look again at once.
          if (waits.signalOf(queue) === mark)
            await waits.sleep(queue, Math.min(deadline - now, pause, pollMs));
          if (state.closed) return [];
        }
      } finally {
        release();
      }
    },
    async ack(queue, id, receipt) {
      if (UUID.test(id) && UUID.test(receipt) && (await claims.ack(queue, id, receipt))) return;
      await leaseError(queue, id);
    },
    async nack(queue, id, receipt, delayMs) {
      await leased(plans.nack, queue, id, receipt, [maxAttempts, delayMs]);
    },
    async extend(queue, id, receipt, visibilityMs) {
      await leased(plans.extend, queue, id, receipt, [maxAttempts, visibilityMs]);
    },
    async stats(queue) {
      const [row] = await query<
        Record<'ready' | 'delayed' | 'inflight' | 'ended' | 'spent' | 'dead', number>
      >(plans.stats, [queue, maxAttempts]);
      const count = (field: keyof NonNullable<typeof row>) => num(row?.[field] ?? 0);
      return {
        depth: count('ready') + count('ended'),
        delayed: count('delayed'),
        inFlight: count('inflight'),
        dead: count('dead') + count('spent'),
      };
    },
    async deadLetters(queue, limit) {
      await settle(queue);
      const rows = await query<MessageRow>(plans.deadLetters, [queue, limit]);
      return rows.map(
        (dead): DeadMessage => ({
          id: dead.id,
          payload: parseJson(dead.payload),
          attempts: num(dead.attempts),
          enqueuedAt: iso(num(dead.enqueued)),
          diedAt: iso(num(dead.died)),
        }),
      );
    },
    async redrive(queue, limit) {
      await settle(queue);
      const [row] = await query<{ moved: number }>(plans.redrive, [queue, limit]);
      return num(row?.moved ?? 0);
    },
  };
  return {
    driver,
    close() {
      waits.wake(undefined);
      stopWaking();
    },
  };
}
