import { describe, expect, it } from 'vitest';
import type { ConsumerStore } from '../../lib/storage/types.js';
import type { Fixture } from '../support/fixture.js';
import { expectInvalid, name, sleep } from '../support/helpers.js';

/** Passes a deliberately ill-typed argument through the typed API. */
const bad = (value: unknown) => value as never;

/** Claims and binds one message id to whichever consumer the registry picks; answers that consumer. */
async function deliver(store: ConsumerStore, queue: string, id: string): Promise<string | undefined> {
  const slot = await store.claim(queue);
  if (!slot) return undefined;
  expect(await store.bind(queue, slot.slot, { id, receipt: `r-${id}` }, slot.visibilityTimeout)).toBe(true);
  return slot.connectionId;
}

export function describeConsumers(f: Fixture): void {
  const c = () => f.storage().consumers;

  describe('consumers', () => {
    it('claim answers nothing without consumers; a consumer gets slots up to its max, then none', async () => {
      const queue = name('q');
      expect(await c().claim(queue)).toBeUndefined();
      const conn = name('conn');
      await c().register(conn, queue, { max: 2, visibilityTimeout: 7 });
      expect(await c().queues()).toContain(queue);
      const first = await c().claim(queue);
      expect(first).toMatchObject({ connectionId: conn, visibilityTimeout: 7 });
      expect(first!.slot).toMatch(/^~/);
      expect(await c().bind(queue, first!.slot, { id: 'm1', receipt: 'r1' }, 7)).toBe(true);
      expect(await deliver(c(), queue, 'm2')).toBe(conn);
      expect(await c().claim(queue)).toBeUndefined();
      expect(await c().list(queue)).toEqual([
        { connectionId: conn, queue, max: 2, visibilityTimeout: 7, inFlight: ['m1', 'm2'] },
      ]);
      // An ack (release) frees a slot.
      expect(await c().release(queue, 'm1')).toBe(conn);
      expect(await c().release(queue, 'm1')).toBeUndefined();
      expect(await deliver(c(), queue, 'm3')).toBe(conn);
      expect((await c().list(queue))[0]!.inFlight).toEqual(['m2', 'm3']);
    });

    it('a released slot that was never bound frees its place', async () => {
      const queue = name('q');
      const conn = name('conn');
      await c().register(conn, queue);
      const slot = await c().claim(queue);
      expect(slot?.connectionId).toBe(conn);
      expect(await c().claim(queue)).toBeUndefined();
      expect(await c().release(queue, slot!.slot)).toBe(conn);
      expect((await c().claim(queue))?.connectionId).toBe(conn);
    });

    it('spreads claims over consumers: the least loaded first, then the one served longest ago', async () => {
      const queue = name('q');
      const [a, b] = [name('a'), name('b')];
      await c().register(a, queue, { max: 10 });
      await c().register(b, queue, { max: 10 });
      const served: string[] = [];
      for (let i = 0; i < 6; i++) served.push((await deliver(c(), queue, `m${i}`))!);
      expect(served.filter((x) => x === a)).toHaveLength(3);
      expect(served.filter((x) => x === b)).toHaveLength(3);
      // Each claim goes to the one holding fewer: never the same one twice in a row here.
      for (let i = 1; i < served.length; i++) expect(served[i]).not.toBe(served[i - 1]);
      // A frees two: the next two go to A.
      await c().release(queue, 'm0');
      await c().release(queue, served[1] === a ? 'm1' : 'm2');
      const heldByA = (await c().list(queue)).find((x) => x.connectionId === a)!.inFlight.length;
      expect(heldByA).toBe(1);
      expect(await deliver(c(), queue, 'n1')).toBe(a);
      expect(await deliver(c(), queue, 'n2')).toBe(a);
    });

    it('concurrent claims never pass a consumer max', async () => {
      const queue = name('q');
      const [a, b] = [name('a'), name('b')];
      await c().register(a, queue, { max: 3 });
      await c().register(b, queue, { max: 2 });
      const slots = await Promise.all(Array.from({ length: 20 }, () => c().claim(queue)));
      const claimed = slots.filter((s) => s !== undefined);
      expect(claimed).toHaveLength(5);
      expect(claimed.filter((s) => s.connectionId === a)).toHaveLength(3);
      expect(claimed.filter((s) => s.connectionId === b)).toHaveLength(2);
    });

    it('a lease that ended frees its slot; extend moves the end', async () => {
      const queue = name('q');
      const conn = name('conn');
      await c().register(conn, queue, { max: 1, visibilityTimeout: 0.3 });
      const slot = (await c().claim(queue))!;
      await c().bind(queue, slot.slot, { id: 'm1', receipt: 'r1' }, 0.3);
      expect(await c().extend(queue, 'm1', 5)).toBe(true);
      expect(await c().extend(queue, 'nope', 5)).toBe(false);
      await sleep(500);
      expect(await c().claim(queue)).toBeUndefined();
      await c().register(conn, queue, { max: 2, visibilityTimeout: 0.3 });
      const second = (await c().claim(queue))!;
      await c().bind(queue, second.slot, { id: 'm2', receipt: 'r2' }, 0.3);
      await sleep(500);
      expect((await c().list(queue))[0]!.inFlight).toEqual(['m1']);
      expect((await c().claim(queue))?.connectionId).toBe(conn);
    });

    it('stop answers what the consumer held and ends it; a slot bound after the stop is refused', async () => {
      const queue = name('q');
      const [a, b] = [name('a'), name('b')];
      await c().register(a, queue, { max: 3 });
      await c().register(b, queue, { max: 3 });
      const pending = (await c().claim(queue))!;
      const other = pending.connectionId === a ? b : a;
      expect(await deliver(c(), queue, 'x1')).toBe(other);
      const second = (await c().claim(queue))!;
      expect(second.connectionId).toBe(pending.connectionId);
      await c().bind(queue, second.slot, { id: 'x2', receipt: 'r-x2' }, 30);
      expect(await c().stop(pending.connectionId, queue)).toEqual([
        { queue, connectionId: pending.connectionId, id: 'x2', receipt: 'r-x2' },
      ]);
      expect(await c().bind(queue, pending.slot, { id: 'x3', receipt: 'r-x3' }, 30)).toBe(false);
      expect((await c().list(queue)).map((x) => x.connectionId)).toEqual([other]);
      expect(await c().stop(pending.connectionId, queue)).toEqual([]);
      expect(await c().stop(other, queue)).toEqual([
        { queue, connectionId: other, id: 'x1', receipt: 'r-x1' },
      ]);
      expect(await c().queues()).not.toContain(queue);
    });

    it('removeConnection ends its consumers on every queue and answers what they held', async () => {
      const [q1, q2] = [name('q1'), name('q2')];
      const [conn, stays] = [name('conn'), name('stays')];
      await c().register(conn, q1);
      await c().register(conn, q2);
      await c().register(stays, q2, { max: 5 });
      expect(await deliver(c(), q1, 'a')).toBe(conn);
      const toConn = (await c().claim(q2))!;
      const target = toConn.connectionId;
      await c().bind(q2, toConn.slot, { id: 'b', receipt: 'r-b' }, 30);
      const held = await c().removeConnection(conn);
      const expected = [{ queue: q1, connectionId: conn, id: 'a', receipt: 'r-a' }];
      if (target === conn) expected.push({ queue: q2, connectionId: conn, id: 'b', receipt: 'r-b' });
      expect([...held].sort((x, y) => x.queue.localeCompare(y.queue))).toEqual(
        expected.sort((x, y) => x.queue.localeCompare(y.queue)),
      );
      expect(await c().list(q1)).toEqual([]);
      expect((await c().list(q2)).map((x) => x.connectionId)).toEqual([stays]);
      expect(await c().removeConnection(conn)).toEqual([]);
      // The binding of a message again (a redelivery) replaces the earlier record.
      expect(await deliver(c(), q2, 'b2')).toBe(stays);
    });

    it('register again changes max and visibility and keeps what the consumer holds', async () => {
      const queue = name('q');
      const conn = name('conn');
      await c().register(conn, queue, { max: 1 });
      expect(await deliver(c(), queue, 'm1')).toBe(conn);
      await c().register(conn, queue, { max: 2, visibilityTimeout: 60 });
      expect(await c().list(queue)).toEqual([
        { connectionId: conn, queue, max: 2, visibilityTimeout: 60, inFlight: ['m1'] },
      ]);
      expect((await c().claim(queue))?.visibilityTimeout).toBe(60);
    });

    it('connections pages the connections with a consumer, until their last consumer ends', async () => {
      const base = name('conn');
      const [a, b, c2] = [`${base}-a`, `${base}-b`, `${base}-c`];
      const [q1, q2] = [name('q'), name('q')];
      await c().register(a, q1);
      await c().register(a, q2);
      await c().register(b, q1);
      await c().register(c2, q2);
      // Every id between `base` and `${base}-a` would start with `base`: the page holds ours only.
      expect(await c().connections({ after: base, limit: 2 })).toEqual([a, b]);
      expect(await c().connections({ after: b, limit: 2 })).toEqual([
        c2,
        ...(await c().connections({ after: c2, limit: 1 })),
      ]);
      expect(await c().connections()).toEqual(expect.arrayContaining([a, b, c2]));
      await c().stop(a, q1);
      expect(await c().connections({ after: base, limit: 3 })).toEqual([a, b, c2]);
      await c().stop(a, q2);
      await c().removeConnection(b);
      expect(await c().connections({ after: base, limit: 3 })).not.toContain(a);
      expect((await c().connections({ after: base, limit: 3 })).filter((id) => id.startsWith(base))).toEqual([
        c2,
      ]);
      await c().register(a, q1);
      expect((await c().connections({ after: base, limit: 3 })).filter((id) => id.startsWith(base))).toEqual([
        a,
        c2,
      ]);
      await expectInvalid(() => c().connections({ limit: 0 }), 'limit');
      await expectInvalid(() => c().connections({ limit: 1001 }), 'limit');
      await expectInvalid(() => c().connections({ after: bad(7) }), 'after');
    });

    it('refuses bad arguments before any I/O', async () => {
      const queue = name('q');
      await expectInvalid(() => c().register(bad(''), queue), 'connectionId');
      await expectInvalid(() => c().register('c', bad(42)), 'queue');
      await expectInvalid(() => c().register('c', queue, { max: 0 }), 'max');
      await expectInvalid(() => c().register('c', queue, { max: 101 }), 'max');
      await expectInvalid(() => c().register('c', queue, { max: 1.5 }), 'max');
      await expectInvalid(() => c().register('c', queue, { visibilityTimeout: 0 }), 'visibilityTimeout');
      await expectInvalid(() => c().register('c', queue, { visibilityTimeout: 43_201 }), 'visibilityTimeout');
      await expectInvalid(() => c().register('c', queue, bad({ wait: 1 })), 'options');
      await expectInvalid(() => c().bind(queue, 's', bad({ id: '', receipt: 'r' }), 1), 'id');
      await expectInvalid(() => c().extend(queue, 'm', -1), 'visibilityTimeout');
      await expectInvalid(() => c().release(queue, bad(null)), 'slotOrId');
    });
  });
}
