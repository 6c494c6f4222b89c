import { num, type Query } from './context.js';

/**
 * Milliseconds until something in a queue becomes visible by itself (a delay or lease ending),
 * with the look-up under way per queue: receivers of one queue that found it empty together (a
 * notification wakes them all, one claim takes what came) share one statement. A slightly
 * earlier answer only shortens a wait that notifications and `pollMs` bound anyway.
 * `statement`: the plan `nextDue` (queues.sql.ts).
 */
export function queueNextDue(query: Query, statement: string): (queue: string) => Promise<number> {
  const lookUps = new Map<string, Promise<number>>();
  const lookUp = async (queue: string): Promise<number> => {
    const [row] = await query<{ due: number | null }>(statement, [queue]);
    return row?.due === null || row?.due === undefined ? Number.POSITIVE_INFINITY : num(row.due);
  };
  return (queue) => {
    let due = lookUps.get(queue);
    if (!due) {
      due = lookUp(queue).finally(() => lookUps.delete(queue));
      lookUps.set(queue, due);
    }
    return due;
  };
}
