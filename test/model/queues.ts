/**
 * One queue against a model: sends with and without delay and dedup id, receives with short and
 * long leases, acks, nacks and extends with current and stale receipts, stats and dead letters,
 * with `queues.maxAttempts` of 2 so messages die within a run.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { ConflictError, NotFoundError } from '../../lib/errors.js';
import type { Storage } from '../../lib/storage/types.js';
import {
  after,
  by,
  type Deadline,
  Divergence,
  LONG_S,
  type Outcome,
  phase,
  SHORT_S,
  SLACK_MS,
  sleep,
  timed,
  WAIT_MS,
  type Window,
} from './time.js';

/** `queues.maxAttempts` of the storage the commands run on. */
export const MAX_ATTEMPTS = 2;

type Ttl = 'short' | 'long';
export type QueueCommand =
  | { t: 'send'; p: number; delay: 0 | Ttl; dedup?: number }
  | { t: 'receive'; max: number; vt: Ttl }
  | { t: 'ack'; d: number }
  | { t: 'nack'; d: number; delay: 0 | 'short' }
  | { t: 'extend'; d: number; vt: Ttl }
  | { t: 'stats' }
  | { t: 'deadLetters' }
  | { t: 'wait' };

const ttl = fc.constantFrom<Ttl>('short', 'long');
/** A delivery by its place among those received so far (modulo their number), or an unknown one. */
const delivery = fc.nat({ max: 20 });

export const queueCommand: fc.Arbitrary<QueueCommand> = fc.oneof(
  {
    arbitrary: fc.record(
      {
        t: fc.constant('send'),
        p: fc.nat({ max: 99 }),
        delay: fc.constantFrom<0 | Ttl>(0, 0, 0, 'short', 'long'),
        dedup: fc.nat({ max: 2 }),
      },
      { requiredKeys: ['t', 'p', 'delay'] },
    ),
    weight: 4,
  },
  {
    arbitrary: fc.record({ t: fc.constant('receive'), max: fc.integer({ min: 1, max: 3 }), vt: ttl }),
    weight: 4,
  },
  { arbitrary: fc.record({ t: fc.constant('ack'), d: delivery }), weight: 2 },
  fc.record({ t: fc.constant('nack'), d: delivery, delay: fc.constantFrom<0 | 'short'>(0, 'short') }),
  fc.record({ t: fc.constant('extend'), d: delivery, vt: ttl }),
  fc.record({ t: fc.constant('stats') }),
  { arbitrary: fc.record({ t: fc.constant('deadLetters') }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('wait') }), weight: 2 },
) as fc.Arbitrary<QueueCommand>;

interface Message {
  id: string;
  payload: number;
  seq: number;
  attempts: number;
  state: 'ready' | 'leased' | 'dead' | 'acked';
  /** ready: when it becomes visible; leased: when the lease ends. */
  due: Deadline;
  receipt: string | null;
  /** dead: when it died. */
  died?: Deadline;
}

type Category = 'visible' | 'delayed' | 'inflight' | 'dead';
const seconds = (t: Ttl) => (t === 'short' ? SHORT_S : LONG_S);
const ms = (iso: string) => new Date(iso).getTime();
const during = (window: Window): Deadline => ({ min: window.start - SLACK_MS, max: window.end + SLACK_MS });

export async function runQueue(
  storage: Storage,
  queue: string,
  commands: readonly QueueCommand[],
): Promise<void> {
  const messages = new Map<string, Message>();
  const deliveries: { id: string; receipt: string }[] = [];
  const dedupFirst = new Map<number, string>();
  let seq = 0;

  /** A lease that surely ended on the last attempt is a dead letter (it died when the lease ended). */
  const settle = (window: Window) => {
    for (const m of messages.values()) {
      if (m.state === 'leased' && m.attempts >= MAX_ATTEMPTS && phase(m.due, window) === 'passed') {
        Object.assign(m, { state: 'dead', died: m.due, receipt: null });
      }
    }
  };
  /** What `m` may be for a call in `window` (several when a deadline is unsure). */
  const possible = (m: Message, window: Window): Category[] => {
    if (m.state === 'acked') return [];
    if (m.state === 'dead') return ['dead'];
    const p = phase(m.due, window);
    if (m.state === 'ready')
      return p === 'passed' ? ['visible'] : p === 'pending' ? ['delayed'] : ['visible', 'delayed'];
    const ended: Category = m.attempts >= MAX_ATTEMPTS ? 'dead' : 'visible';
    return p === 'pending' ? ['inflight'] : p === 'passed' ? [ended] : ['inflight', ended];
  };
  const live = () => [...messages.values()].filter((m) => m.state !== 'acked');

  for (const command of commands) {
    const fail = (message: string): never => {
      throw new Divergence(command, message);
    };
    const expectOk = <T>(outcome: Outcome<T>): T => {
      if (!outcome.ok) return fail(`failed with ${String(outcome.error)}`);
      return outcome.value;
    };
    switch (command.t) {
      case 'wait':
        await sleep(WAIT_MS);
        break;
      case 'send': {
        const delay = command.delay === 0 ? 0 : seconds(command.delay);
        const options = { delay, ...(command.dedup === undefined ? {} : { dedupId: `d${command.dedup}` }) };
        const r = await timed(() => storage.queues.send(queue, command.p, options));
        const got = expectOk(r);
        const first = command.dedup === undefined ? undefined : dedupFirst.get(command.dedup);
        if (first !== undefined) {
          if (!got.duplicate || got.id !== first)
            fail(`answered ${JSON.stringify(got)}, the model says a duplicate of ${first}`);
          break;
        }
        if (got.duplicate)
          fail(`answered a duplicate (${got.id}), the model has no earlier send with this dedup id`);
        if (command.dedup !== undefined) dedupFirst.set(command.dedup, got.id);
        messages.set(got.id, {
          id: got.id,
          payload: command.p,
          seq: ++seq,
          attempts: 0,
          state: 'ready',
          due: delay === 0 ? by(r.window) : after(r.window, delay * 1000),
          receipt: null,
        });
        break;
      }
      case 'receive': {
        const r = await timed(() =>
          storage.queues.receive(queue, { max: command.max, visibilityTimeout: seconds(command.vt) }),
        );
        const got = expectOk(r);
        settle(r.window);
        const maybe = live().filter((m) => possible(m, r.window).includes('visible'));
        const surely = maybe.filter((m) => possible(m, r.window).length === 1);
        const ids = new Set(got.map((g) => g.id));
        if (got.length > command.max) fail(`answered ${got.length} messages, asked for ${command.max}`);
        for (const g of got) {
          const m = maybe.find((c) => c.id === g.id);
          if (!m)
            fail(
              `delivered ${g.id} (${messages.get(g.id)?.state ?? 'unknown'}), which the model says is not visible`,
            );
          if (g.payload !== m!.payload || g.attempts !== m!.attempts + 1) {
            fail(
              `delivered ${JSON.stringify(g)}, the model has payload ${m!.payload} after ${m!.attempts} attempts`,
            );
          }
        }
        const seqs = got.map((g) => messages.get(g.id)!.seq);
        if (seqs.some((s, i) => i > 0 && s < seqs[i - 1]!))
          fail(`delivered out of enqueue order: ${seqs.join(', ')}`);
        for (const m of surely) {
          if (ids.has(m.id)) continue;
          if (got.length < command.max)
            fail(`left visible message ${m.seq} behind while answering fewer than asked`);
          if (seqs.some((s) => s > m.seq))
            fail(`skipped visible message ${m.seq} for a later one (${seqs.join(', ')})`);
        }
        for (const g of got) {
          const m = messages.get(g.id)!;
          Object.assign(m, {
            state: 'leased',
            attempts: g.attempts,
            receipt: g.receipt,
            due: after(r.window, seconds(command.vt) * 1000),
          });
          deliveries.push({ id: g.id, receipt: g.receipt });
        }
        break;
      }
      case 'ack':
      case 'nack':
      case 'extend': {
        const chosen =
          deliveries.length === 0 || command.d % 8 === 7
            ? undefined
            : deliveries[command.d % deliveries.length];
        const { id, receipt } = chosen ?? { id: randomUUID(), receipt: randomUUID() };
        const r = await timed(() =>
          command.t === 'ack'
            ? storage.queues.ack(queue, id, receipt)
            : command.t === 'nack'
              ? storage.queues.nack(queue, id, receipt, {
                  delay: command.delay === 0 ? 0 : seconds(command.delay),
                })
              : storage.queues.extend(queue, id, receipt, seconds(command.vt)),
        );
        settle(r.window);
        const m = messages.get(id);
        const outcome = (expected: 'ok' | 'not found' | 'conflict' | 'ok or conflict') => {
          const actual = r.ok
            ? 'ok'
            : r.error instanceof NotFoundError
              ? 'not found'
              : r.error instanceof ConflictError
                ? 'conflict'
                : String(r.error);
          if (!expected.split(' or ').includes(actual))
            fail(`answered ${actual}, the model says ${expected}`);
          return actual;
        };
        if (!m || m.state === 'acked') {
          outcome('not found');
          break;
        }
        if (m.state === 'dead' || m.receipt !== receipt) {
          outcome('conflict');
          break;
        }
        // A current receipt: honoured even after the lease ended, unless that was the last attempt.
        const exhausted = m.attempts >= MAX_ATTEMPTS;
        const unsure = exhausted && phase(m.due, r.window) === 'unsure';
        if (outcome(unsure ? 'ok or conflict' : 'ok') === 'conflict') {
          Object.assign(m, { state: 'dead', died: m.due, receipt: null });
          break;
        }
        if (command.t === 'ack') m.state = 'acked';
        else if (command.t === 'extend') m.due = after(r.window, seconds(command.vt) * 1000);
        else if (exhausted) Object.assign(m, { state: 'dead', died: during(r.window), receipt: null });
        else {
          const delay = command.delay === 0 ? 0 : seconds(command.delay);
          Object.assign(m, {
            state: 'ready',
            receipt: null,
            due: delay === 0 ? by(r.window) : after(r.window, delay * 1000),
          });
        }
        break;
      }
      case 'stats': {
        const r = await timed(() => storage.queues.stats(queue));
        const got = expectOk(r);
        settle(r.window);
        const all = live().map((m) => possible(m, r.window));
        const range = (categories: Category[]) => ({
          lo: all.filter((p) => p.every((c) => categories.includes(c))).length,
          hi: all.filter((p) => p.some((c) => categories.includes(c))).length,
        });
        const expected = {
          depth: range(['visible', 'delayed']),
          delayed: range(['delayed']),
          inFlight: range(['inflight']),
          dead: range(['dead']),
        };
        for (const [field, { lo, hi }] of Object.entries(expected)) {
          const value = got[field as keyof typeof got];
          if (value < lo || value > hi)
            fail(`${field} is ${value}, the model says ${lo}–${hi} (${JSON.stringify(got)})`);
        }
        break;
      }
      case 'deadLetters': {
        const r = await timed(() => storage.queues.deadLetters(queue));
        const got = expectOk(r);
        settle(r.window);
        const listed = new Set(got.map((g) => g.id));
        for (const m of live()) {
          const p = possible(m, r.window);
          if (p.length === 1 && p[0] === 'dead' && !listed.has(m.id)) fail(`misses dead message ${m.seq}`);
          if (!p.includes('dead') && listed.has(m.id))
            fail(`lists message ${m.seq}, which the model says is ${p.join('/')}`);
          // Listed though its last lease might not have ended yet: it had.
          if (p.length === 2 && listed.has(m.id))
            Object.assign(m, { state: 'dead', died: m.due, receipt: null });
        }
        const deathOf = (id: string) => messages.get(id)!.died!;
        for (const g of got) {
          const m = messages.get(g.id)!;
          if (g.payload !== m.payload || g.attempts !== m.attempts) {
            fail(
              `lists ${JSON.stringify(g)}, the model has payload ${m.payload} after ${m.attempts} attempts`,
            );
          }
          const died = ms(g.diedAt);
          const { min, max } = deathOf(g.id);
          if (died < min - 1 || died > max + 1) {
            fail(
              `message ${m.seq} died at ${g.diedAt}, the model says between ${new Date(min).toISOString()} and ${new Date(max).toISOString()}`,
            );
          }
        }
        for (let i = 1; i < got.length; i++) {
          if (deathOf(got[i - 1]!.id).min > deathOf(got[i]!.id).max)
            fail('dead letters are not oldest death first');
        }
        break;
      }
    }
  }
}
