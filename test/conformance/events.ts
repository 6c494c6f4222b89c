import { describe, expect, it, vi } from 'vitest';
import type { EventStore, PublishedEvent } from '../../lib/storage/types.js';
import { type Fixture, needs } from '../support/fixture.js';
import { isoMs, name, pairs, sleep } from '../support/helpers.js';

const messages = (events: PublishedEvent[]) => events.map((e) => e.message);

async function publishAll(events: EventStore, channel: string, items: unknown[]): Promise<string[]> {
  const ids: string[] = [];
  for (const message of items) ids.push((await events.publish(channel, message as never)).id);
  return ids;
}

/** Subscribes and records every event that arrives, in arrival order. */
async function record(events: EventStore, channel: string, after?: string) {
  const received: PublishedEvent[] = [];
  const stop = await events.subscribe(
    channel,
    (e) => void received.push(e),
    after === undefined ? undefined : { after },
  );
  return { received, stop };
}

export function describeEvents(f: Fixture): void {
  const events = () => f.storage().events;

  describe('events', () => {
    describe('publish / history', () => {
      it('publish answers id and publishedAt; history answers the event', async () => {
        const channel = name('ch');
        const before = Date.now();
        const published = await events().publish(channel, { hello: 'world', n: [1] });
        expect(typeof published.id).toBe('string');
        expect(isoMs(published.publishedAt)).toBeGreaterThanOrEqual(before - 1000);
        expect(await events().history(channel)).toEqual([
          {
            id: published.id,
            channel,
            message: { hello: 'world', n: [1] },
            publishedAt: published.publishedAt,
          },
        ]);
      });

      it('ids strictly increase in publish order and compare correctly as strings', async () => {
        const channel = name('ch');
        // Enough events to cross digit boundaries (9→10, 99→100) and share milliseconds.
        const ids = await publishAll(
          events(),
          channel,
          Array.from({ length: 120 }, (_, i) => i),
        );
        for (const [a, b] of pairs(ids)) {
          expect(a < b, `${a} < ${b}`).toBe(true);
          expect(b > a).toBe(true);
        }
        expect([...ids].sort()).toEqual(ids);
      });

      it('concurrent publishes get distinct ids and history is in id order', async () => {
        const channel = name('ch');
        const published = await Promise.all(
          Array.from({ length: 50 }, (_, i) => events().publish(channel, i)),
        );
        expect(new Set(published.map((p) => p.id)).size).toBe(50);
        const history = await events().history(channel, { limit: 1000 });
        expect(history).toHaveLength(50);
        for (const [a, b] of pairs(history)) expect(a.id < b.id, `${a.id} < ${b.id}`).toBe(true);
        expect(new Set(messages(history))).toEqual(new Set(Array.from({ length: 50 }, (_, i) => i)));
      });

      it('history is oldest first and honours after and limit', async () => {
        const channel = name('ch');
        const ids = await publishAll(events(), channel, ['a', 'b', 'c', 'd', 'e']);
        expect(messages(await events().history(channel))).toEqual(['a', 'b', 'c', 'd', 'e']);
        expect(messages(await events().history(channel, { after: ids[1] }))).toEqual(['c', 'd', 'e']);
        expect(messages(await events().history(channel, { limit: 2 }))).toEqual(['a', 'b']);
        expect(messages(await events().history(channel, { after: ids[1], limit: 2 }))).toEqual(['c', 'd']);
        expect(await events().history(channel, { after: ids[4] })).toEqual([]);
      });

      it('history answers at most 100 events by default and up to 1000 with limit', async () => {
        const channel = name('ch');
        await Promise.all(Array.from({ length: 150 }, (_, i) => events().publish(channel, i)));
        expect(await events().history(channel)).toHaveLength(100);
        expect(await events().history(channel, { limit: 1000 })).toHaveLength(150);
      });

      it('history of an unknown channel is empty', async () => {
        expect(await events().history(name('ch'))).toEqual([]);
      });

      it('channels are isolated', async () => {
        const a = name('ch');
        const b = name('ch');
        await events().publish(a, 'for a');
        await events().publish(b, 'for b');
        expect(messages(await events().history(a))).toEqual(['for a']);
        expect(messages(await events().history(b))).toEqual(['for b']);
      });

      it('channel names that look like key syntax (braces, colons, globs) are isolated', async () => {
        const base = name('ch');
        const names = [base, `${base}}`, `${base}}:log`, `{${base}}`, `${base}:*`, `${base}*`];
        for (const channel of names) await events().publish(channel, channel);
        for (const channel of names) {
          expect(messages(await events().history(channel)), channel).toEqual([channel]);
        }
      });

      it('every JSON message type round-trips', async () => {
        const channel = name('ch');
        const items = [null, false, 0, '', '👋 ünï', [], {}, { deep: [{ x: null }] }];
        await publishAll(events(), channel, items);
        expect(messages(await events().history(channel))).toStrictEqual(items);
      });
    });

    describe('bounded history', () => {
      it('keeps the newest events.maxHistory events', async () => {
        const store = f.withConfig({ events: { maxHistory: 5 } }).events;
        const channel = name('ch');
        const ids = await publishAll(
          store,
          channel,
          Array.from({ length: 9 }, (_, i) => i),
        );
        const history = await store.history(channel);
        expect(messages(history)).toEqual([4, 5, 6, 7, 8]);
        expect(history.map((e) => e.id)).toEqual(ids.slice(4));
      });

      it('concurrent publishers never leave more than events.maxHistory events', async () => {
        const store = f.withConfig({ events: { maxHistory: 5 } }).events;
        const channel = name('ch');
        for (let burst = 0; burst < 3; burst++) {
          const published = await Promise.all(
            Array.from({ length: 15 }, (_, i) => store.publish(channel, i)),
          );
          const history = await store.history(channel, { limit: 1000 });
          expect(history).toHaveLength(5);
          const newest = published
            .map((p) => p.id)
            .sort()
            .slice(-5);
          expect(history.map((e) => e.id)).toEqual(newest);
        }
      });

      it('a per-channel override by glob (events.maxHistoryByChannel) wins over maxHistory', async () => {
        const stem = name('ov');
        const store = f.withConfig({
          events: { maxHistory: 5, maxHistoryByChannel: { [`${stem}:small:*`]: 2, [`${stem}:*`]: 3 } },
        }).events;
        const small = `${stem}:small:x`;
        const medium = `${stem}:other`;
        const plain = name('ch');
        for (const channel of [small, medium, plain]) {
          await publishAll(
            store,
            channel,
            Array.from({ length: 8 }, (_, i) => i),
          );
        }
        // The first matching pattern wins.
        expect(messages(await store.history(small))).toEqual([6, 7]);
        expect(messages(await store.history(medium))).toEqual([5, 6, 7]);
        expect(messages(await store.history(plain))).toEqual([3, 4, 5, 6, 7]);
      });

      it('ids keep increasing after old events are dropped', async () => {
        const store = f.withConfig({ events: { maxHistory: 2 } }).events;
        const channel = name('ch');
        const ids = await publishAll(store, channel, [1, 2, 3, 4]);
        for (const [a, b] of pairs(ids)) expect(a < b).toBe(true);
        expect((await store.history(channel)).map((e) => e.id)).toEqual(ids.slice(2));
      });
    });

    describe('subscribe', () => {
      const it_ = it.skipIf(!f.caps.subscribe);
      const tag = needs('subscribe');

      it_(`two subscribers racing onto a new channel both receive what follows ${tag}`, async () => {
        for (let round = 0; round < 5; round++) {
          const channel = name('ch');
          const [a, b] = await Promise.all([record(events(), channel), record(events(), channel)]);
          try {
            const [id] = await publishAll(events(), channel, ['after-both']);
            await vi.waitFor(
              () => {
                expect(a.received.map((e) => e.id)).toEqual([id]);
                expect(b.received.map((e) => e.id)).toEqual([id]);
              },
              { timeout: 5000 },
            );
          } finally {
            await Promise.all([a.stop(), b.stop()]);
          }
        }
      });

      it_(`receives subsequent publishes in order, each exactly once ${tag}`, async () => {
        const channel = name('ch');
        await events().publish(channel, 'before');
        const { received, stop } = await record(events(), channel);
        try {
          const ids = await publishAll(events(), channel, [1, 2, 3, 4, 5]);
          await vi.waitFor(() => expect(received).toHaveLength(5), { timeout: 5000 });
          await sleep(200); // a repeat would show up here
          expect(received.map((e) => e.id)).toEqual(ids);
          expect(messages(received)).toEqual([1, 2, 3, 4, 5]);
          expect(received[0]).toMatchObject({ channel, message: 1 });
          expect(typeof received[0]?.publishedAt).toBe('string');
        } finally {
          await stop();
        }
      });

      it_(`events published concurrently reach a subscriber once each, in id order ${tag}`, async () => {
        const channel = name('ch');
        const { received, stop } = await record(events(), channel);
        try {
          await Promise.all(Array.from({ length: 30 }, (_, i) => events().publish(channel, i)));
          await vi.waitFor(() => expect(received).toHaveLength(30), { timeout: 5000 });
          await sleep(200);
          expect(received).toHaveLength(30);
          const history = await events().history(channel, { limit: 1000 });
          expect(received.map((e) => e.id)).toEqual(history.map((e) => e.id));
        } finally {
          await stop();
        }
      });

      it_(
        `large and small events interleaved arrive once each, in order, as history has them ${tag}`,
        async () => {
          // Over 8,000 bytes an event no longer fits in a PostgreSQL notification.
          const large = (n: number) => ({ n, blob: 'x'.repeat(9000) });
          const channel = name('ch');
          const { received, stop } = await record(events(), channel);
          try {
            await Promise.all([1, large(2), 3, large(4)].map((m) => events().publish(channel, m)));
            // Ends with a large event: no later small one can reveal a large one that went missing.
            const items = [5, large(6), 7, 8, large(9), large(10), 11, large(12)];
            await publishAll(events(), channel, items);
            await vi.waitFor(() => expect(received).toHaveLength(12), { timeout: 4000 });
            await sleep(200); // a repeat would show up here
            expect(received).toEqual(await events().history(channel, { limit: 1000 }));
            expect(messages(received).slice(4)).toEqual(items);
          } finally {
            await stop();
          }
        },
      );

      it_(`unsubscribe stops delivery ${tag}`, async () => {
        const channel = name('ch');
        const { received, stop } = await record(events(), channel);
        await events().publish(channel, 'first');
        await vi.waitFor(() => expect(received).toHaveLength(1), { timeout: 5000 });
        await stop();
        await events().publish(channel, 'after stop');
        await sleep(300);
        expect(messages(received)).toEqual(['first']);
      });

      it_(`two subscribers each get every event ${tag}`, async () => {
        const channel = name('ch');
        const one = await record(events(), channel);
        const two = await record(events(), channel);
        try {
          await publishAll(events(), channel, ['x', 'y']);
          await vi.waitFor(
            () => {
              expect(messages(one.received)).toEqual(['x', 'y']);
              expect(messages(two.received)).toEqual(['x', 'y']);
            },
            { timeout: 5000 },
          );
        } finally {
          await one.stop();
          await two.stop();
        }
      });

      it_(
        `subscribe with after replays retained events, then continues with no gap and no repeat ${tag}`,
        async () => {
          const channel = name('ch');
          const ids = await publishAll(events(), channel, ['e0', 'e1', 'e2', 'e3']);
          // Publish while the subscription is being set up: the seam between replay and live.
          const racing = publishAll(events(), channel, ['r0', 'r1', 'r2', 'r3', 'r4']);
          const { received, stop } = await record(events(), channel, ids[1]);
          try {
            await racing;
            await publishAll(events(), channel, ['l0', 'l1']);
            const expected = ['e2', 'e3', 'r0', 'r1', 'r2', 'r3', 'r4', 'l0', 'l1'];
            await vi.waitFor(() => expect(received).toHaveLength(expected.length), { timeout: 5000 });
            await sleep(200);
            expect(messages(received)).toEqual(expected);
            const history = await events().history(channel, { after: ids[1] });
            expect(received.map((e) => e.id)).toEqual(history.map((e) => e.id));
          } finally {
            await stop();
          }
        },
      );

      it_(`a subscriber hears only its own channel ${tag}`, async () => {
        const mine = name('ch');
        const other = name('ch');
        const { received, stop } = await record(events(), mine);
        try {
          await events().publish(other, 'not for me');
          await events().publish(`${mine}x`, 'not for me either');
          await events().publish(mine, 'mine');
          await vi.waitFor(() => expect(received).toHaveLength(1), { timeout: 5000 });
          await sleep(200);
          expect(messages(received)).toEqual(['mine']);
          expect(received[0]?.channel).toBe(mine);
        } finally {
          await stop();
        }
      });
    });
  });
}
