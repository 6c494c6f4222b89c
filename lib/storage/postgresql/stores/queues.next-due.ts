import { num, type Query } from './context.js';

/**
 * Milliseconds until something in a queue becomes visible by itself (a delay or lease ending),
 * with the look-up under way per queue: receivers of one queue that found it empty together (a
 * notification wakes them all, one claim takes what came) share one statement. A slightly
 * earlier answer only shortens a wait that notifications and `pollMs` bound anyway.
 */
export class QueueNextDue {
  private readonly lookUps = new Map<string, Promise<number>>();

  /** `statement`: the plan `nextDue` (queues.sql.ts). */
  constructor(
    private readonly query: Query,
    private readonly statement: string,
  ) {}

  of(queue: string): Promise<number> {
    let due = this.lookUps.get(queue);
    if (!due) {
      due = this.lookUp(queue).finally(() => this.lookUps.delete(queue));
      this.lookUps.set(queue, due);
    }
    return due;
  }

  private async lookUp(queue: string): Promise<number> {
    const [row] = await this.query<{ due: number | null }>(this.statement, [queue]);
    return row?.due === null || row?.due === undefined ? Number.POSITIVE_INFINITY : num(row.due);
  }
}
