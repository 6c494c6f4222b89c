import { describe, expect, it } from 'vitest';
import { Batcher } from '../../lib/storage/postgresql/batcher.js';

/** A batcher whose batches are recorded and end when the test says so. */
function controlled(maxInFlight?: number) {
  const batches: number[][] = [];
  const finish: (() => void)[] = [];
  const batcher = new Batcher<number, number>(
    (items) => {
      batches.push(items);
      return new Promise((resolve) => finish.push(() => resolve(items.map((i) => i * 10))));
    },
    500,
    undefined,
    maxInFlight,
  );
  return { batcher, batches, finish };
}

/** Lets pending promise callbacks run. */
const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('Batcher', () => {
  it('sends the first call at once and the calls made meanwhile together, each answered in order', async () => {
    const { batcher, batches, finish } = controlled();
    const answers = [1, 2, 3].map((i) => batcher.add(i));
    expect(batches).toEqual([[1]]);
    finish.shift()!();
    await answers[0];
    await settled();
    expect(batches).toEqual([[1], [2, 3]]);
    finish.shift()!();
    expect(await Promise.all(answers)).toEqual([10, 20, 30]);
  });

  it('with maxInFlight 2, a second batch goes out while the first is under way; the rest wait together', async () => {
    const { batcher, batches, finish } = controlled(2);
    const answers = [1, 2, 3, 4].map((i) => batcher.add(i));
    expect(batches).toEqual([[1], [2]]);
    finish.shift()!();
    await answers[0];
    await settled();
    expect(batches).toEqual([[1], [2], [3, 4]]);
    finish.shift()!();
    finish.shift()!();
    expect(await Promise.all(answers)).toEqual([10, 20, 30, 40]);
  });

  it('rejects a lone call whose batch throws before it starts, and sends the next call', async () => {
    let fail = true;
    const batcher = new Batcher<number, number>((items) => {
      if (fail) throw new Error('no connection');
      return Promise.resolve(items);
    });
    await expect(batcher.add(1)).rejects.toThrow('no connection');
    fail = false;
    expect(await batcher.add(2)).toBe(2);
  });
});
