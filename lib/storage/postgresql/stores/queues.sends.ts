import { randomUUID } from 'node:crypto';
import { ConflictError } from '../../../errors.js';
import type { SendResult } from '../../types.js';
import { Batcher } from '../batcher.js';
import { MAX_BATCH, num, type Query } from './context.js';
import type { queuePlans } from './queues.sql.js';

type SendPlans = Pick<ReturnType<typeof queuePlans>, 'sendMany' | 'sendDeduplicated'>;

/** The sends of one storage's queues: with a dedupId one statement each, else batched. */
export function queueSends(query: Query, plans: SendPlans, dedupWindowMs: number) {
  /** Concurrent sends without a dedupId go out as one INSERT (ids in `items` order, so FIFO holds). */
  const batched = new Batcher<{ id: string; queue: string; json: string; delayMs: number }, void>(
    async (items) => {
      await query(plans.sendMany, [
        items.map((i) => i.id),
        items.map((i) => i.queue),
        items.map((i) => i.json),
        items.map((i) => i.delayMs),
      ]);
      return items.map(() => undefined);
    },
    MAX_BATCH,
  );

  return async (
    queue: string,
    json: string,
    delayMs: number,
    dedupId: string | undefined,
  ): Promise<SendResult> => {
    const id = randomUUID();
    if (dedupId === undefined) {
      await batched.add({ id, queue, json, delayMs });
      return { id, duplicate: false };
    }
    for (let attempt = 0; ; attempt++) {
      const [row] = await query<{ sent: number; existing: string | null }>(plans.sendDeduplicated, [
        id,
        queue,
        json,
        delayMs,
        dedupId,
        dedupWindowMs,
      ]);
      if (num(row?.sent) === 1) return { id, duplicate: false };
      if (row?.existing) return { id: row.existing, duplicate: true };
      // A concurrent send committed the dedup row after this statement's snapshot (the stale
      // row it replaced does not count: its window ended): look again with a new snapshot.
      if (attempt >= 5) throw new ConflictError(`dedupId ${JSON.stringify(dedupId)} is contended; retry`);
    }
  };
}
