import { randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError } from '../../../errors.js';
import { isoTime as iso, type QueueDriver } from '../../driver.js';
import type { DeadMessage, ReceivedMessage } from '../../types.js';
import { parseJson } from '../../validate.js';
import { Batcher } from '../batcher.js';
import type { Row } from '../sql.js';
import { MAX_BATCH, num, type StoreContext, sum, UUID } from './context.js';
import { queuePlans } from './queues.sql.js';

type MessageRow = {
  id: string;
  receipt: string | null;
  payload: string;
  attempts: number;
  state: 'leased' | 'dead';
  enqueued: number;
  died: number | null;
  seq: number;
};

/** What one queue call asks of the shared statement (see `ops` below). */
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

export function pgQueues(ctx: StoreContext) {
  const { config, table, query, wakeups, state } = ctx;
  const channel = ctx.channels.queues;
  const queuesTable = table('queues');
  const plans = queuePlans(queuesTable, table('queue_dedup'), channel, config.postgresql.leaseCommit);
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

  /**
   * One `ackAndClaim`: `acks` removed (answers the ids removed) and up to `max` messages of
   * `queue` leased, in FIFO order. Messages that died on the way took places: the claim looks
   * again for the rest (without the acks, done by then).
   */
  const ackAndClaim = async (
    acks: readonly Ack[],
    queue: string,
    max: number,
    visibilityMs: number,
  ): Promise<{ acked: Set<string>; messages: ReceivedMessage[] }> => {
    const [row] = await query<{ acked: string; claimed: string }>(plans.ackAndClaim, [
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
  /**
   * Acks and claims made at the same moment share statements (natural batching, batcher.ts):
   * every ack of the batch and the claims of one queue and lease length go out as one
   * `ackAndClaim`, one commit; claims of other queues or lease lengths get one statement per
   * queue. A receiver that acks its message and asks for the next thus costs its share of one
   * statement. Claims of one queue get the first messages in FIFO order, handed out in turn,
   * each its `max` at most; an ack answers whether its message was removed (the first of two
   * acks of one message counts).
   */
  const ops = new Batcher<QueueOp, QueueOpResult>(
    async (items) => {
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
    },
    MAX_BATCH,
    undefined,
    OPS_IN_FLIGHT,
  );
  const claim = (queue: string, max: number, visibilityMs: number) =>
    ops.add({ kind: 'claim', queue, max, visibilityMs }) as Promise<ReceivedMessage[]>;
  /** Concurrent sends without a dedupId go out as one INSERT (ids in `items` order, so FIFO holds). */
  const sends = new Batcher<{ id: string; queue: string; json: string; delayMs: number }, void>(
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
  /** Milliseconds until something in `queue` becomes visible by itself (a delay or lease ending). */
  const lookUpDue = async (queue: string): Promise<number> => {
    const [row] = await query<{ due: number | null }>(plans.nextDue, [queue]);
    return row?.due === null || row?.due === undefined ? Number.POSITIVE_INFINITY : num(row.due);
  };
  /**
   * The look-up under way per queue: receivers of one queue that found it empty together (a
   * notification wakes them all, one claim takes what came) share one statement. A slightly
   * earlier answer only shortens a wait that notifications and `pollMs` bound anyway.
   */
  const dueLookUps = new Map<string, Promise<number>>();
  const nextDue = (queue: string): Promise<number> => {
    let due = dueLookUps.get(queue);
    if (!due) {
      due = lookUpDue(queue).finally(() => dueLookUps.delete(queue));
      dueLookUps.set(queue, due);
    }
    return due;
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
      if (dedupId === undefined) {
        await sends.add({ id, queue, json, delayMs });
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
      if (UUID.test(id) && UUID.test(receipt) && (await ops.add({ kind: 'ack', queue, id, receipt }))) return;
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
      wake(undefined);
      stopWaking();
    },
  };
}
