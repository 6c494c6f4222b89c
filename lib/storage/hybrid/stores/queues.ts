import type { Driver, QueueDriver } from '../../driver.js';
import type { Breaker } from '../breaker.js';
import { deadlineOf, isOutage, type Member, primaryOf, withDeadline } from '../context.js';
import type { JournalEntry } from '../journal.js';
import type { BackendName } from '../settings.js';
import type { StoreDeps } from './deps.js';

const TAG_SEPARATOR = '~';
const TAGS = new Map<BackendName, string>([
  ['redis', 'r'],
  ['postgresql', 'p'],
]);

/**
 * Every send the fallback takes journals its queue: whether an earlier entry of this queue is
 * still waiting in the journal is not known here (another container, or this one's replay, may
 * have moved it already). Replaying an entry whose queue is empty is two reads.
 */
const queueJournal = (queue: string): JournalEntry[] => [{ t: 'queue', queue }];

/** Queues; a receipt says which backend leased its message, so ack/nack/extend go back to it. */
export function hybridQueues({ ctx, router, write }: StoreDeps, breaker: Breaker): QueueDriver {
  const tag = (m: Member, receipt: string) =>
    ctx.fallbackOn ? `${TAGS.get(m.name)}${TAG_SEPARATOR}${receipt}` : receipt;
  const untag = (receipt: string): { m: Member; receipt: string } => {
    const primary = primaryOf(ctx, 'queues');
    if (!ctx.fallbackOn || receipt[1] !== TAG_SEPARATOR) return { m: primary, receipt };
    const name = [...TAGS].find(([, tag]) => tag === receipt[0])?.[0];
    const member = name ? ctx.members.get(name) : undefined;
    return member ? { m: member, receipt: receipt.slice(2) } : { m: primary, receipt };
  };
  /** A lease lives on the backend that issued it: no fallback, but a timeout still opens its breaker. */
  async function onLeaseHolder<T>(op: string, receipt: string, run: (d: Driver, r: string) => Promise<T>) {
    router.touch();
    const { m: member, receipt: raw } = untag(receipt);
    const started = performance.now();
    try {
      const value = await withDeadline(run(member.driver, raw), deadlineOf(ctx, member), member.name);
      member.warm = true;
      router.record(
        'queues',
        member,
        member === primaryOf(ctx, 'queues') ? 'primary' : 'fallback',
        op,
        started,
      );
      return value;
    } catch (error) {
      if (isOutage(error)) breaker.open(member, error);
      throw error;
    }
  }

  return {
    send: (queue, json, delayMs, dedupId) =>
      write(
        'queues',
        'queues.send',
        (d) => d.queues.send(queue, json, delayMs, dedupId),
        () => [],
        { mirror: false, ordered: false, journalFirst: queueJournal(queue) },
      ),
    async receive(queue, max, visibilityMs, waitMs) {
      const { value, served } = await router.serve(
        'queues',
        'queues.receive',
        (m, left) => m.driver.queues.receive(queue, max, visibilityMs, left),
        waitMs,
      );
      return value.map((message) => ({ ...message, receipt: tag(served, message.receipt) }));
    },
    ack: (queue, id, receipt) => onLeaseHolder('queues.ack', receipt, (d, r) => d.queues.ack(queue, id, r)),
    nack: (queue, id, receipt, delayMs) =>
      onLeaseHolder('queues.nack', receipt, (d, r) => d.queues.nack(queue, id, r, delayMs)),
    extend: (queue, id, receipt, visibilityMs) =>
      onLeaseHolder('queues.extend', receipt, (d, r) => d.queues.extend(queue, id, r, visibilityMs)),
    stats: (queue) => router.read('queues', 'queues.stats', (d) => d.queues.stats(queue)),
    deadLetters: (queue, limit) =>
      router.read('queues', 'queues.deadLetters', (d) => d.queues.deadLetters(queue, limit)),
    redrive: (queue, limit) =>
      write(
        'queues',
        'queues.redrive',
        (d) => d.queues.redrive(queue, limit),
        () => [],
        { mirror: false, ordered: false, journalFirst: queueJournal(queue) },
      ),
  };
}
