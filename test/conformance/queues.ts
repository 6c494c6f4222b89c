import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError } from '../../lib/errors.js';
import type { Json, QueueStore, ReceivedMessage } from '../../lib/storage/types.js';
import { type Fixture, needs } from '../support/fixture.js';
import { expectError, isoMs, name, sleep } from '../support/helpers.js';

const ids = (messages: { id: string }[]) => messages.map((m) => m.id);

async function receiveOne(
  queues: QueueStore,
  queue: string,
  visibilityTimeout = 30,
): Promise<ReceivedMessage> {
  const got = await queues.receive(queue, { visibilityTimeout });
  expect(got).toHaveLength(1);
  return got[0]!;
}

export function describeQueues(f: Fixture): void {
  const queues = () => f.storage().queues;

  describe('queues', () => {
    describe('send / receive / ack', () => {
      it('delivers a sent message with a receipt, attempts 1 and its enqueue time', async () => {
        const queue = name('q');
        const before = Date.now();
        const sent = await queues().send(queue, { job: 'build', n: [1, 2] });
        expect(sent.duplicate).toBe(false);
        expect(typeof sent.id).toBe('string');
        const m = await receiveOne(queues(), queue);
        expect(m.id).toBe(sent.id);
        expect(m.payload).toEqual({ job: 'build', n: [1, 2] });
        expect(m.attempts).toBe(1);
        expect(typeof m.receipt).toBe('string');
        expect(m.receipt.length).toBeGreaterThan(0);
        expect(isoMs(m.enqueuedAt)).toBeGreaterThanOrEqual(before - 1000);
      });

      it('ack deletes the message: nothing more to receive, stats all zero', async () => {
        const queue = name('q');
        await queues().send(queue, 'x');
        const m = await receiveOne(queues(), queue);
        await queues().ack(queue, m.id, m.receipt);
        expect(await queues().receive(queue)).toEqual([]);
        expect(await queues().stats(queue)).toEqual({ depth: 0, delayed: 0, inFlight: 0, dead: 0 });
      });

      it('receive on an empty or unknown queue answers []', async () => {
        expect(await queues().receive(name('q'))).toEqual([]);
        expect(await queues().receive(name('q'), { max: 100 })).toEqual([]);
      });

      it('a leased message is not delivered again while its lease lasts', async () => {
        const queue = name('q');
        await queues().send(queue, 1);
        await receiveOne(queues(), queue, 60);
        expect(await queues().receive(queue, { max: 10 })).toEqual([]);
      });

      it('every payload JSON type survives the queue', async () => {
        const queue = name('q');
        const payloads: Json[] = [null, false, 0, '', 'ünï 👋', [], {}, { a: [{ b: null }] }];
        for (const p of payloads) await queues().send(queue, p);
        const got = await queues().receive(queue, { max: 100 });
        expect(got.map((m) => m.payload)).toStrictEqual(payloads);
      });

      it('message ids are unique', async () => {
        const queue = name('q');
        const sent = await Promise.all(Array.from({ length: 100 }, (_, i) => queues().send(queue, i)));
        expect(new Set(ids(sent)).size).toBe(100);
      });

      it('queue names that look like key syntax (braces, colons, globs) are isolated', async () => {
        const base = name('q');
        const names = [base, `${base}}`, `${base}}:ready`, `{${base}}`, `${base}:*`, `${base}*`, `${base} `];
        for (const queue of names) await queues().send(queue, queue);
        for (const queue of names) {
          expect(await queues().stats(queue), queue).toEqual({ depth: 1, delayed: 0, inFlight: 0, dead: 0 });
          const got = await queues().receive(queue, { max: 10 });
          expect(got.map((m) => m.payload)).toEqual([queue]);
        }
      });

      it("a dedupId that spells another queue's key layout does not reach that queue", async () => {
        const base = name('q');
        // A store that pasted names into keys unescaped would map both sends to one dedup key.
        const first = await queues().send(`${base}}:dd:z`, 'for B', { dedupId: 'w' });
        const second = await queues().send(base, 'for A', { dedupId: 'z}:dd:w' });
        expect(second.duplicate).toBe(false);
        expect(second.id).not.toBe(first.id);
        expect((await queues().receive(base)).map((m) => m.payload)).toEqual(['for A']);
        const third = await queues().send(base, 'typed', { dedupId: 'x}:ready' });
        expect(third.duplicate).toBe(false);
        expect((await queues().stats(base)).depth).toBe(1);
      });

      it('queues are isolated from each other', async () => {
        const a = name('q');
        const b = name('q');
        await queues().send(a, 'for a');
        expect(await queues().receive(b)).toEqual([]);
        expect((await queues().stats(b)).depth).toBe(0);
        expect((await receiveOne(queues(), a)).payload).toBe('for a');
      });
    });

    describe('leases (at-least-once)', () => {
      it('an unacked message comes back after its lease with attempts+1 and a new receipt', async () => {
        const queue = name('q');
        await queues().send(queue, 'p');
        const first = await receiveOne(queues(), queue, 0.3);
        await sleep(600);
        const second = await receiveOne(queues(), queue, 30);
        expect(second.id).toBe(first.id);
        expect(second.attempts).toBe(2);
        expect(second.receipt).not.toBe(first.receipt);
        expect(second.payload).toBe('p');
        expect(second.enqueuedAt).toBe(first.enqueuedAt);
      });

      it('a lease that ended is still honoured until the message is delivered again, whatever reads ran', async () => {
        const queue = name('q');
        await queues().send(queue, 'late');
        const lease = await receiveOne(queues(), queue, 0.2);
        await sleep(400);
        // Reads that look at the queue must not change the outcome of the late ack.
        expect((await queues().stats(queue)).inFlight).toBe(0);
        await queues().deadLetters(queue);
        await queues().ack(queue, lease.id, lease.receipt);
        expect(await queues().receive(queue)).toEqual([]);
        expect(await queues().stats(queue)).toEqual({ depth: 0, delayed: 0, inFlight: 0, dead: 0 });
      });

      it('extend revives a lease that ended but was not delivered again', async () => {
        const queue = name('q');
        await queues().send(queue, 'slow');
        const lease = await receiveOne(queues(), queue, 0.2);
        await sleep(400);
        await queues().stats(queue);
        await queues().extend(queue, lease.id, lease.receipt, 60);
        expect(await queues().receive(queue)).toEqual([]);
        expect((await queues().stats(queue)).inFlight).toBe(1);
        await queues().ack(queue, lease.id, lease.receipt);
      });

      it('ack with a stale receipt throws ConflictError; the current receipt works once, then NotFoundError', async () => {
        const queue = name('q');
        await queues().send(queue, 'p');
        const first = await receiveOne(queues(), queue, 0.3);
        await sleep(600);
        const second = await receiveOne(queues(), queue, 30);
        await expectError(() => queues().ack(queue, first.id, first.receipt), ConflictError);
        await expectError(() => queues().nack(queue, first.id, first.receipt), ConflictError);
        await expectError(() => queues().extend(queue, first.id, first.receipt, 30), ConflictError);
        // The stale calls changed nothing: the message is still leased by the second delivery.
        expect(await queues().stats(queue)).toMatchObject({ depth: 0, inFlight: 1 });
        await queues().ack(queue, second.id, second.receipt);
        await expectError(() => queues().ack(queue, second.id, second.receipt), NotFoundError);
        await expectError(() => queues().nack(queue, second.id, second.receipt), NotFoundError);
        await expectError(() => queues().extend(queue, second.id, second.receipt, 30), NotFoundError);
      });

      it('two concurrent acks of one message: one succeeds, the other throws NotFoundError', async () => {
        const queue = name('q');
        await queues().send(queue, 'a');
        await queues().send(queue, 'b');
        const [a, b] = await queues().receive(queue, { max: 2 });
        // The first ack goes out at once; the two that follow it may share one statement.
        const [first, ...twice] = await Promise.allSettled([
          queues().ack(queue, a!.id, a!.receipt),
          queues().ack(queue, b!.id, b!.receipt),
          queues().ack(queue, b!.id, b!.receipt),
        ]);
        expect(first.status).toBe('fulfilled');
        expect(twice.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const refused = twice.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        expect(refused.reason).toBeInstanceOf(NotFoundError);
      });

      it('a receipt of another message is refused with ConflictError', async () => {
        const queue = name('q');
        await queues().send(queue, 'a');
        await queues().send(queue, 'b');
        const [a, b] = await queues().receive(queue, { max: 2 });
        await expectError(() => queues().ack(queue, a!.id, b!.receipt), ConflictError);
        await queues().ack(queue, a!.id, a!.receipt);
        await queues().ack(queue, b!.id, b!.receipt);
      });

      it('ack, nack and extend of an unknown message throw NotFoundError', async () => {
        const queue = name('q');
        await queues().send(queue, 'other');
        await expectError(() => queues().ack(queue, name('id'), name('receipt')), NotFoundError);
        await expectError(() => queues().nack(queue, name('id'), name('receipt')), NotFoundError);
        await expectError(() => queues().extend(queue, name('id'), name('receipt'), 10), NotFoundError);
      });

      it('nack makes the message visible again at once, attempts+1 and a new receipt', async () => {
        const queue = name('q');
        await queues().send(queue, 'p');
        const first = await receiveOne(queues(), queue, 60);
        await queues().nack(queue, first.id, first.receipt);
        const second = await receiveOne(queues(), queue, 60);
        expect(second.id).toBe(first.id);
        expect(second.attempts).toBe(2);
        expect(second.receipt).not.toBe(first.receipt);
        await expectError(() => queues().ack(queue, first.id, first.receipt), ConflictError);
      });

      it('nack with a delay keeps the message invisible until the delay passes', async () => {
        const queue = name('q');
        await queues().send(queue, 'p');
        const first = await receiveOne(queues(), queue, 60);
        await queues().nack(queue, first.id, first.receipt, { delay: 0.5 });
        expect(await queues().receive(queue)).toEqual([]);
        expect(await queues().stats(queue)).toEqual({ depth: 1, delayed: 1, inFlight: 0, dead: 0 });
        await sleep(800);
        const second = await receiveOne(queues(), queue);
        expect(second.id).toBe(first.id);
        expect(second.attempts).toBe(2);
      });

      it('extend keeps a message leased past its original timeout, with the same receipt', async () => {
        const queue = name('q');
        await queues().send(queue, 'p');
        const m = await receiveOne(queues(), queue, 0.4);
        await queues().extend(queue, m.id, m.receipt, 30);
        await sleep(700);
        expect(await queues().receive(queue)).toEqual([]);
        expect((await queues().stats(queue)).inFlight).toBe(1);
        await queues().ack(queue, m.id, m.receipt);
        expect(await queues().stats(queue)).toEqual({ depth: 0, delayed: 0, inFlight: 0, dead: 0 });
      });

      it('extend can also shorten a lease', async () => {
        const queue = name('q');
        await queues().send(queue, 'p');
        const m = await receiveOne(queues(), queue, 60);
        await queues().extend(queue, m.id, m.receipt, 0.2);
        await sleep(500);
        const again = await receiveOne(queues(), queue);
        expect(again.id).toBe(m.id);
        expect(again.attempts).toBe(2);
      });
    });

    describe('dead letters', () => {
      it('a message nacked on its last attempt moves to the dead letters', async () => {
        const q = f.withConfig({ queues: { maxAttempts: 2 } }).queues;
        const queue = name('q');
        const before = Date.now();
        const { id } = await q.send(queue, { poison: true });
        const first = await receiveOne(q, queue);
        await q.nack(queue, first.id, first.receipt);
        const second = await receiveOne(q, queue);
        expect(second.attempts).toBe(2);
        await q.nack(queue, second.id, second.receipt);
        expect(await q.receive(queue)).toEqual([]);
        expect(await q.stats(queue)).toEqual({ depth: 0, delayed: 0, inFlight: 0, dead: 1 });
        const dead = await q.deadLetters(queue);
        expect(dead).toHaveLength(1);
        expect(dead[0]).toMatchObject({
          id,
          payload: { poison: true },
          attempts: 2,
          enqueuedAt: first.enqueuedAt,
        });
        expect(isoMs(dead[0]?.diedAt)).toBeGreaterThanOrEqual(before - 1000);
        // It went to the dead letters: the last receipt is no longer current.
        await expectError(() => q.ack(queue, second.id, second.receipt), ConflictError);
      });

      it('a message whose last lease ends unacked moves to the dead letters', async () => {
        const q = f.withConfig({ queues: { maxAttempts: 2 } }).queues;
        const queue = name('q');
        const { id } = await q.send(queue, 'slow');
        await receiveOne(q, queue, 0.3);
        await sleep(600);
        const second = await receiveOne(q, queue, 0.3);
        expect(second.attempts).toBe(2);
        await sleep(600);
        expect(await q.receive(queue)).toEqual([]);
        expect(ids(await q.deadLetters(queue))).toEqual([id]);
        expect(await q.stats(queue)).toEqual({ depth: 0, delayed: 0, inFlight: 0, dead: 1 });
      });

      it('deadLetters lists oldest death first, at most limit', async () => {
        const q = f.withConfig({ queues: { maxAttempts: 1 } }).queues;
        const queue = name('q');
        await q.send(queue, 'a');
        await q.send(queue, 'b');
        const [a, b] = await q.receive(queue, { max: 2 });
        await q.nack(queue, b!.id, b!.receipt);
        await sleep(5);
        await q.nack(queue, a!.id, a!.receipt);
        expect((await q.deadLetters(queue)).map((m) => m.payload)).toEqual(['b', 'a']);
        expect((await q.deadLetters(queue, { limit: 1 })).map((m) => m.payload)).toEqual(['b']);
        expect(await q.deadLetters(name('q'))).toEqual([]);
      });

      it('redrive moves dead letters back with attempts reset and answers how many', async () => {
        const q = f.withConfig({ queues: { maxAttempts: 1 } }).queues;
        const queue = name('q');
        await q.send(queue, 'a');
        await q.send(queue, 'b');
        const [a, b] = await q.receive(queue, { max: 2 });
        await q.nack(queue, a!.id, a!.receipt);
        await sleep(5);
        await q.nack(queue, b!.id, b!.receipt);
        expect((await q.stats(queue)).dead).toBe(2);

        expect(await q.redrive(queue, { limit: 1 })).toBe(1);
        expect(await q.stats(queue)).toEqual({ depth: 1, delayed: 0, inFlight: 0, dead: 1 });
        const back = await receiveOne(q, queue);
        expect(back.id).toBe(a!.id);
        expect(back.payload).toBe('a');
        expect(back.attempts).toBe(1);
        await q.ack(queue, back.id, back.receipt);

        expect(await q.redrive(queue)).toBe(1);
        expect(ids(await q.receive(queue, { max: 10 }))).toEqual([b!.id]);
        expect(await q.redrive(queue)).toBe(0);
        expect(await q.deadLetters(queue)).toEqual([]);
      });
    });

    describe('stats', () => {
      it('counts depth (visible + delayed), delayed, inFlight and dead', async () => {
        const queue = name('q');
        expect(await queues().stats(queue)).toEqual({ depth: 0, delayed: 0, inFlight: 0, dead: 0 });
        await queues().send(queue, 'a');
        await queues().send(queue, 'b');
        await queues().send(queue, 'later', { delay: 60 });
        expect(await queues().stats(queue)).toEqual({ depth: 3, delayed: 1, inFlight: 0, dead: 0 });
        const m = await receiveOne(queues(), queue);
        expect(m.payload).toBe('a');
        expect(await queues().stats(queue)).toEqual({ depth: 2, delayed: 1, inFlight: 1, dead: 0 });
        await queues().ack(queue, m.id, m.receipt);
        expect(await queues().stats(queue)).toEqual({ depth: 2, delayed: 1, inFlight: 0, dead: 0 });
      });
    });

    describe('dedupId', () => {
      it('a second send with the same dedupId answers the first id with duplicate:true and enqueues nothing', async () => {
        const queue = name('q');
        const dedupId = name('d');
        const first = await queues().send(queue, 'one', { dedupId });
        const second = await queues().send(queue, 'two', { dedupId });
        expect(first.duplicate).toBe(false);
        expect(second).toEqual({ id: first.id, duplicate: true });
        expect((await queues().stats(queue)).depth).toBe(1);
        const got = await queues().receive(queue, { max: 10 });
        expect(got.map((m) => m.payload)).toEqual(['one']);
        // Still within the window after the first message is gone.
        await queues().ack(queue, got[0]!.id, got[0]!.receipt);
        expect(await queues().send(queue, 'three', { dedupId })).toEqual({ id: first.id, duplicate: true });
        expect(await queues().receive(queue)).toEqual([]);
      });

      it('concurrent sends with one dedupId enqueue exactly one message', async () => {
        const queue = name('q');
        const dedupId = name('d');
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => queues().send(queue, i, { dedupId })),
        );
        expect(new Set(ids(results)).size).toBe(1);
        expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
        expect((await queues().stats(queue)).depth).toBe(1);
      });

      it('different dedupIds enqueue different messages', async () => {
        const queue = name('q');
        const a = await queues().send(queue, 'a', { dedupId: name('d') });
        const b = await queues().send(queue, 'b', { dedupId: name('d') });
        expect(a.id).not.toBe(b.id);
        expect(b.duplicate).toBe(false);
        expect((await queues().stats(queue)).depth).toBe(2);
      });
    });

    describe('delay and order', () => {
      it('a delayed message is invisible until due, then delivered', async () => {
        const queue = name('q');
        const sent = await queues().send(queue, 'later', { delay: 0.5 });
        expect(await queues().receive(queue)).toEqual([]);
        expect(await queues().stats(queue)).toEqual({ depth: 1, delayed: 1, inFlight: 0, dead: 0 });
        await sleep(800);
        expect((await queues().stats(queue)).delayed).toBe(0);
        const m = await receiveOne(queues(), queue);
        expect(m.id).toBe(sent.id);
        expect(m.attempts).toBe(1);
      });

      it('a delayed message does not hold back later visible ones', async () => {
        const queue = name('q');
        await queues().send(queue, 'later', { delay: 60 });
        await queues().send(queue, 'now');
        const got = await queues().receive(queue, { max: 10 });
        expect(got.map((m) => m.payload)).toEqual(['now']);
      });

      it('delivers visible messages FIFO by enqueue order', async () => {
        const queue = name('q');
        for (let i = 0; i < 20; i++) await queues().send(queue, i);
        const got: number[] = [];
        for (;;) {
          const batch = await queues().receive(queue, { max: 3 });
          if (batch.length === 0) break;
          got.push(...batch.map((m) => m.payload as number));
        }
        expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i));
      });

      it('a nacked message keeps its place ahead of later ones', async () => {
        const queue = name('q');
        for (const p of ['a', 'b', 'c']) await queues().send(queue, p);
        const a = await receiveOne(queues(), queue);
        expect(a.payload).toBe('a');
        await queues().nack(queue, a.id, a.receipt);
        const got = await queues().receive(queue, { max: 3 });
        expect(got.map((m) => m.payload)).toEqual(['a', 'b', 'c']);
        expect(got.map((m) => m.attempts)).toEqual([2, 1, 1]);
      });

      it('a message whose lease expired keeps its place ahead of later ones', async () => {
        const queue = name('q');
        for (const p of ['a', 'b']) await queues().send(queue, p);
        await receiveOne(queues(), queue, 0.3);
        await queues().send(queue, 'c');
        await sleep(600);
        const got = await queues().receive(queue, { max: 3 });
        expect(got.map((m) => m.payload)).toEqual(['a', 'b', 'c']);
      });

      it('receive with max answers up to max messages, each leased once', async () => {
        const queue = name('q');
        for (let i = 0; i < 5; i++) await queues().send(queue, i);
        const first = await queues().receive(queue, { max: 3 });
        expect(first.map((m) => m.payload)).toEqual([0, 1, 2]);
        const rest = await queues().receive(queue, { max: 10 });
        expect(rest.map((m) => m.payload)).toEqual([3, 4]);
        expect(new Set([...ids(first), ...ids(rest)]).size).toBe(5);
        expect(new Set([...first, ...rest].map((m) => m.receipt)).size).toBe(5);
        expect(await queues().stats(queue)).toMatchObject({ depth: 0, inFlight: 5 });
      });
    });

    describe('long poll', () => {
      it.skipIf(!f.caps.longPoll)(
        `wait answers a message sent while waiting ${needs('longPoll')}`,
        async () => {
          const queue = name('q');
          const sender = sleep(200).then(() => queues().send(queue, 'arrived'));
          const got = await queues().receive(queue, { wait: 10 });
          const sent = await sender;
          expect(got).toHaveLength(1);
          expect(got[0]?.id).toBe(sent.id);
          expect(got[0]?.payload).toBe('arrived');
        },
      );

      it.skipIf(!f.caps.longPoll)(`wait answers [] when nothing arrives ${needs('longPoll')}`, async () => {
        const queue = name('q');
        expect(await queues().receive(queue, { wait: 1 })).toEqual([]);
      });

      it.skipIf(!f.caps.longPoll)(
        `wait answers at once when a message is already visible ${needs('longPoll')}`,
        async () => {
          const queue = name('q');
          await queues().send(queue, 'ready');
          const got = await queues().receive(queue, { wait: 20, max: 5 });
          expect(got.map((m) => m.payload)).toEqual(['ready']);
        },
      );
    });

    describe('concurrency', () => {
      it.skipIf(!f.caps.concurrentReceivers)(
        `8 concurrent receivers over 2,000 messages: each delivered exactly once ${needs('concurrentReceivers')}`,
        async () => {
          const queue = name('q');
          const total = 2000;
          const sent: string[] = [];
          for (let start = 0; start < total; start += 100) {
            const batch = await Promise.all(
              Array.from({ length: Math.min(100, total - start) }, (_, i) =>
                queues().send(queue, { n: start + i }),
              ),
            );
            sent.push(...ids(batch));
          }
          expect(new Set(sent).size).toBe(total);

          const delivered: { id: string; n: number }[] = [];
          const receiver = async () => {
            for (;;) {
              const batch = await queues().receive(queue, { max: 10, visibilityTimeout: 60 });
              if (batch.length === 0) return;
              for (const m of batch) {
                delivered.push({ id: m.id, n: (m.payload as { n: number }).n });
                await queues().ack(queue, m.id, m.receipt);
              }
            }
          };
          await Promise.all(Array.from({ length: 8 }, receiver));

          expect(delivered).toHaveLength(total);
          expect(new Set(delivered.map((d) => d.id))).toEqual(new Set(sent));
          // Each payload arrived with its own id.
          for (const d of delivered) expect(d.id).toBe(sent[d.n]);
          expect(await queues().stats(queue)).toEqual({ depth: 0, delayed: 0, inFlight: 0, dead: 0 });
        },
        60_000,
      );
    });
  });
}
