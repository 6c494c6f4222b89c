/**
 * The crash soak's verdict from its consumers' lines (soak-consumer.ts), apart from the run so
 * that it can be checked on deliveries made up for the purpose.
 */

/**
 * One delivery, as its consumer reported it: message id, sequence number, attempts counted by
 * the queue, receive start and end (ms since the epoch), pid.
 */
export interface Delivery {
  id: string;
  s: number;
  a: number;
  t0: number;
  t1: number;
  p: number;
}

/** Groups `items` by `key`, each group in call-start order. */
function groupBy<K>(items: Delivery[], key: (d: Delivery) => K): Map<K, Delivery[]> {
  const groups = new Map<K, Delivery[]>();
  for (const d of items) {
    const list = groups.get(key(d)) ?? [];
    list.push(d);
    groups.set(key(d), list);
  }
  for (const list of groups.values()) list.sort((a, b) => a.t0 - b.t0);
  return groups;
}

/**
 * What the consumers' lines say: sequence numbers never delivered, deliveries of one message
 * before its previous lease could have ended (the second receive returned before the first one
 * began plus the visibility timeout), and duplicates not preceded by a kill of the consumer that
 * had the message, a failed ack, or a second message for the same send.
 *
 * When `crash` is given (lease writes committed asynchronously), a redelivery the crash explains
 * is counted in `undone` instead: its previous delivery's claim did not survive (the previous
 * receive returned before the server was back, and the queue counts no more attempts now than
 * then: every claim that survives counts one), or its previous delivery's ack was answered
 * between `crash.durableBefore` (the start of the last send acknowledged before the crash: its
 * commit made every earlier one durable) and `crash.upAt` (an undone ack leaves no trace in the
 * count).
 */
export function judge(
  deliveries: Delivery[],
  context: {
    messages: number;
    visibilityMs: number;
    killed: Map<number, number>;
    ackFailed: Set<string>;
    ackTimes: Map<string, number[]>;
    crash?: { durableBefore: number; upAt: number };
  },
) {
  const bySeq = groupBy(deliveries, (d) => d.s);
  let neverDelivered = 0;
  for (let s = 0; s < context.messages; s++) if (!bySeq.has(s)) neverDelivered++;
  const crash = context.crash;
  const claimUndone = (before: Delivery, after: Delivery) =>
    crash !== undefined && after.id === before.id && after.a <= before.a && before.t1 <= crash.upAt;
  const ackUndoable = (d: Delivery) =>
    crash !== undefined &&
    (context.ackTimes.get(`${d.id}:${d.p}`) ?? []).some((t) => t >= crash.durableBefore && t <= crash.upAt);
  const undone = new Set<Delivery>();
  /** The first few redeliveries that count against the run, with what the lines say of them. */
  const samples: string[] = [];
  const sample = (why: string, before: Delivery, after: Delivery) => {
    if (samples.length >= 5) return;
    const killedAt = context.killed.get(before.p);
    const acks = context.ackTimes.get(`${before.id}:${before.p}`);
    samples.push(JSON.stringify({ why, before, after, killedAt, acks, crash }));
  };
  let early = 0;
  for (const list of groupBy(deliveries, (d) => d.id).values()) {
    for (let i = 1; i < list.length; i++) {
      const [before, after] = [list[i - 1]!, list[i]!];
      if (after.t1 >= before.t0 + context.visibilityMs) continue;
      if (claimUndone(before, after)) undone.add(after);
      else {
        early++;
        sample('early', before, after);
      }
    }
  }
  let duplicates = 0;
  let unexplained = 0;
  for (const list of bySeq.values()) {
    const ids = new Set(list.map((d) => d.id));
    duplicates += list.length - 1;
    for (let i = 1; i < list.length; i++) {
      const [before, after] = [list[i - 1]!, list[i]!];
      const explained =
        (context.killed.get(before.p) ?? 0) >= before.t1 ||
        context.ackFailed.has(`${before.s}:${before.p}`) ||
        // Sent (or moved) as a second message: each id is then delivered once.
        ids.size > 1;
      if (explained) continue;
      if (claimUndone(before, after) || ackUndoable(before)) undone.add(after);
      else {
        unexplained++;
        sample('unexplained duplicate', before, after);
      }
    }
  }
  return {
    delivered: bySeq.size,
    neverDelivered,
    early,
    duplicates,
    unexplained,
    undone: undone.size,
    samples,
  };
}
