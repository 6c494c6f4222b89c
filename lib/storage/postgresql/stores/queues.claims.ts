import { isoTime as iso } from '../../driver.js';
import type { ReceivedMessage } from '../../types.js';
import { parseJson } from '../../validate.js';
import { Batcher } from '../batcher.js';
import { MAX_BATCH, num, type Query, sum } from './context.js';

/** A message as the queue statements answer it (claimed, or a dead letter). */
export type MessageRow = {
  id: string;
  receipt: string | null;
  payload: string;
  attempts: number;
  state: 'leased' | 'dead';
  enqueued: number;
  died: number | null;
  seq: number;
};

/** What one queue call asks of the shared statement (see `queueClaims`). */
type QueueOp =
  | { kind: 'ack'; queue: string; id: string; receipt: string }
  | { kind: 'claim'; queue: string; max: number; visibilityMs: number };
type QueueOpResult = boolean | ReceivedMessage[];
type Ack = Extract<QueueOp, { kind: 'ack' }>;
type Claim = Extract<QueueOp, { kind: 'claim' }>;

/**
 * `ackAndClaim` statements one storage has under way at once. Commits wait for the disk: two at
 * a time let the server flush them together, as the separate ack and claim batches did.
 */
const OPS_IN_FLIGHT = 2;

/**
 * Acks and claims made at the same moment share statements (natural batching, batcher.ts):
 * every ack of the batch and the claims of one queue and lease length go out as one
 * `ackAndClaim`, one commit; claims of other queues or lease lengths get one statement per
 * queue. A receiver that acks its message and asks for the next thus costs its share of one
 * statement. Claims of one queue get the first messages in FIFO order, handed out in turn,
 * each its `max` at most; an ack answers whether its message was removed (the first of two
 * acks of one message counts).
 */
export function queueClaims(query: Query, statement: string, maxAttempts: number) {
  /**
   * One `ackAndClaim` (`statement`, queues.sql.ts): `acks` removed (answers the ids removed) and
   * up to `max` messages of `queue` leased, in FIFO order. Messages that died on the way took
   * places: the claim looks again for the rest (without the acks, done by then).
   */
  const ackAndClaim = async (
    acks: readonly Ack[],
    queue: string,
    max: number,
    visibilityMs: number,
  ): Promise<{ acked: Set<string>; messages: ReceivedMessage[] }> => {
    const [row] = await query<{ acked: string; claimed: string }>(statement, [
      queue,
      max,
      visibilityMs,
      maxAttempts,
      acks.map((a) => a.queue),
      acks.map((a) => a.id),
      acks.map((a) => a.receipt),
    ]);
    const acked = new Set(JSON.parse(row?.acked ?? '[]') as string[]);
    const rows = JSON.parse(row?.claimed ?? '[]') as MessageRow[];
    const delivered = rows.filter((r) => r.state === 'leased').sort((a, b) => num(a.seq) - num(b.seq));
    const messages = delivered.map(
      (message): ReceivedMessage => ({
        id: message.id,
        receipt: message.receipt!,
        payload: parseJson(message.payload),
        attempts: num(message.attempts),
        enqueuedAt: iso(num(message.enqueued)),
      }),
    );
    if (delivered.length < rows.length && messages.length < max)
      messages.push(...(await ackAndClaim([], queue, max - messages.length, visibilityMs)).messages);
    return { acked, messages };
  };

  /** One batch: a result per item, in order. */
  const run = async (items: QueueOp[]): Promise<QueueOpResult[]> => {
    const only = items.length === 1 ? items[0]! : undefined;
    // A lone call (every call of a sequential caller) skips the grouping below.
    if (only?.kind === 'ack') return [(await ackAndClaim([only], '', 0, 0)).acked.has(only.id)];
    if (only?.kind === 'claim')
      return [(await ackAndClaim([], only.queue, only.max, only.visibilityMs)).messages];
    const acks = items.filter((i): i is Ack => i.kind === 'ack');
    const groups = new Map<string, Claim[]>();
    for (const item of items) {
      if (item.kind !== 'claim') continue;
      const key = `${item.queue}\0${item.visibilityMs}`;
      groups.set(key, [...(groups.get(key) ?? []), item]);
    }
    const claimGroups = [...groups.values()];
    const handedOut = new Map<Claim, ReceivedMessage[]>();
    const claimFor = async (claims: Claim[], withAcks: readonly Ack[]) => {
      const { queue, visibilityMs } = claims[0]!;
      const wanted = sum(claims.map((c) => c.max));
      const got = await ackAndClaim(withAcks, queue, wanted, visibilityMs);
      let at = 0;
      for (const claim of claims) {
        handedOut.set(claim, got.messages.slice(at, at + claim.max));
        at += claim.max;
      }
      return got.acked;
    };
    const [first, ...rest] = claimGroups;
    const [acked] = await Promise.all([
      first ? claimFor(first, acks) : ackAndClaim(acks, '', 0, 0).then((r) => r.acked),
      ...rest.map((claims) => claimFor(claims, [])),
    ]);
    return items.map((item) => (item.kind === 'ack' ? acked.delete(item.id) : handedOut.get(item)!));
  };

  const ops = new Batcher<QueueOp, QueueOpResult>(run, MAX_BATCH, undefined, OPS_IN_FLIGHT);
  return {
    /** Up to `max` messages of `queue`, leased for `visibilityMs`, in FIFO order. */
    claim: (queue: string, max: number, visibilityMs: number) =>
      ops.add({ kind: 'claim', queue, max, visibilityMs }) as Promise<ReceivedMessage[]>,
    /** Removes a leased message; answers whether it was removed (`receipt` held its live lease). */
    ack: (queue: string, id: string, receipt: string) =>
      ops.add({ kind: 'ack', queue, id, receipt }) as Promise<boolean>,
  };
}
