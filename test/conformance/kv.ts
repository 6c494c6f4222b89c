import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../lib/errors.js';
import type { Json } from '../../lib/storage/types.js';
import type { Fixture } from '../support/fixture.js';
import { expectError, isoMs, name, sleep } from '../support/helpers.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

export function describeKv(f: Fixture): void {
  const kv = () => f.storage().kv;

  describe('kv', () => {
    describe('get / set / delete / exists', () => {
      it('set then get answers the value; missing keys answer undefined', async () => {
        const key = name('k');
        expect(await kv().get(key)).toBeUndefined();
        expect(await kv().exists(key)).toBe(false);
        expect(await kv().set(key, { a: 1 })).toBe(true);
        expect(await kv().get(key)).toEqual({ a: 1 });
        expect(await kv().exists(key)).toBe(true);
      });

      it('set replaces the previous value and its TTL', async () => {
        const key = name('k');
        await kv().set(key, 'old', { ttl: 100 });
        expect(await kv().ttl(key)).toBeGreaterThan(0);
        expect(await kv().set(key, 'new')).toBe(true);
        expect(await kv().get(key)).toBe('new');
        expect(await kv().ttl(key)).toBeNull();
      });

      it('delete answers whether a live key was deleted', async () => {
        const key = name('k');
        await kv().set(key, 1);
        expect(await kv().delete(key)).toBe(true);
        expect(await kv().get(key)).toBeUndefined();
        expect(await kv().exists(key)).toBe(false);
        expect(await kv().delete(key)).toBe(false);
        expect(await kv().delete(name('never'))).toBe(false);
      });

      it('getEntry answers value and expiry together, undefined when missing', async () => {
        const key = name('k');
        expect(await kv().getEntry(key)).toBeUndefined();
        await kv().set(key, [1, 'two']);
        expect(await kv().getEntry(key)).toEqual({ value: [1, 'two'], expiresAt: null });

        const before = Date.now();
        await kv().set(key, 'x', { ttl: 100 });
        const after = Date.now();
        const entry = await kv().getEntry(key);
        expect(entry?.value).toBe('x');
        // Allow a second of clock difference between this process and the backend.
        const at = isoMs(entry?.expiresAt);
        expect(at).toBeGreaterThanOrEqual(before + 100_000 - 1000);
        expect(at).toBeLessThanOrEqual(after + 100_000 + 1000);
      });
    });

    describe('getMany / setMany', () => {
      it('getMany answers values in the order of keys, undefined for missing ones', async () => {
        const [a, b, c] = [name('a'), name('b'), name('c')];
        await kv().set(a, 'A');
        await kv().set(c, { c: true });
        expect(await kv().getMany([c, b, a, c])).toEqual([{ c: true }, undefined, 'A', { c: true }]);
        expect(await kv().getMany([])).toEqual([]);
      });

      it('setMany writes every entry, each with its own TTL', async () => {
        const keys = Array.from({ length: 50 }, (_, i) => name(`m${i}`));
        await kv().setMany(keys.map((key, i) => ({ key, value: { i }, ttl: i === 0 ? 100 : undefined })));
        expect(await kv().getMany(keys)).toEqual(keys.map((_, i) => ({ i })));
        expect(await kv().ttl(keys[0]!)).toBeGreaterThan(90);
        expect(await kv().ttl(keys[1]!)).toBeNull();
      });

      it('setMany replaces existing values and their TTLs', async () => {
        const key = name('k');
        await kv().set(key, 'old', { ttl: 100 });
        await kv().setMany([{ key, value: 'new' }]);
        expect(await kv().getEntry(key)).toEqual({ value: 'new', expiresAt: null });
      });

      it('accepts 1000 keys in one getMany and 1000 entries in one setMany', async () => {
        const keys = Array.from({ length: 1000 }, (_, i) => `${name('bulk')}-${i}`);
        await kv().setMany(keys.map((key, i) => ({ key, value: i })));
        const values = await kv().getMany(keys);
        expect(values).toEqual(keys.map((_, i) => i));
      });
    });

    describe('TTL', () => {
      it('whole seconds: ttl() answers at most the TTL, and the key is gone after it', async () => {
        const key = name('k');
        await kv().set(key, 'v', { ttl: 1 });
        const left = await kv().ttl(key);
        // Either still live with at most 1 s left, or (on a very slow machine) already gone.
        if (left !== undefined) {
          expect(left).toBeGreaterThan(0);
          expect(left).toBeLessThanOrEqual(1);
        }
        await sleep(1300);
        expect(await kv().get(key)).toBeUndefined();
        expect(await kv().exists(key)).toBe(false);
        expect(await kv().ttl(key)).toBeUndefined();
      });

      it('sub-second: ttl() keeps ms precision, and every read sees the key gone at once (no sweep)', async () => {
        const key = name('k');
        await kv().set(key, 'v', { ttl: 0.25 });
        const left = await kv().ttl(key);
        if (left !== undefined) {
          expect(left).toBeGreaterThan(0);
          expect(left).toBeLessThanOrEqual(0.25);
        }
        await sleep(550);
        expect(await kv().get(key)).toBeUndefined();
        expect(await kv().exists(key)).toBe(false);
        expect(await kv().getEntry(key)).toBeUndefined();
        expect(await kv().ttl(key)).toBeUndefined();
        expect(await kv().getMany([key])).toEqual([undefined]);
        expect(await kv().delete(key)).toBe(false);
      });

      it('ttl() answers a non-integer number of seconds (ms precision)', async () => {
        const key = name('k');
        await kv().set(key, 'v', { ttl: 100.5 });
        const left = await kv().ttl(key);
        expect(left).toBeGreaterThan(99);
        expect(left).toBeLessThanOrEqual(100.5);
        // ms precision: not rounded to whole seconds (100 or 101).
        expect(Number.isInteger(left)).toBe(false);
      });

      it('ttl() answers undefined for a missing key and null for a key without expiry', async () => {
        const key = name('k');
        expect(await kv().ttl(key)).toBeUndefined();
        await kv().set(key, 1);
        expect(await kv().ttl(key)).toBeNull();
      });

      it('expire sets a TTL on an existing key and answers false for a missing one', async () => {
        const key = name('k');
        await kv().set(key, 1);
        expect(await kv().expire(key, 0.3)).toBe(true);
        const left = await kv().ttl(key);
        if (left !== undefined) expect(left).toBeLessThanOrEqual(0.3);
        await sleep(600);
        expect(await kv().get(key)).toBeUndefined();
        expect(await kv().expire(key, 10)).toBe(false);
        expect(await kv().expire(name('never'), 10)).toBe(false);
      });

      it('expire(key, null) removes the TTL: the key persists', async () => {
        const key = name('k');
        await kv().set(key, 'stay', { ttl: 0.4 });
        expect(await kv().expire(key, null)).toBe(true);
        expect(await kv().ttl(key)).toBeNull();
        expect((await kv().getEntry(key))?.expiresAt).toBeNull();
        await sleep(700);
        expect(await kv().get(key)).toBe('stay');
        expect(await kv().expire(name('never'), null)).toBe(false);
      });

      it('expireAt in the future sets the deadline', async () => {
        const key = name('k');
        await kv().set(key, 1);
        const at = new Date(Date.now() + 60_000);
        expect(await kv().expireAt(key, at)).toBe(true);
        const entry = await kv().getEntry(key);
        expect(Math.abs(isoMs(entry?.expiresAt) - at.getTime())).toBeLessThanOrEqual(1000);
        const left = await kv().ttl(key);
        expect(left).toBeGreaterThan(50);
        expect(left).toBeLessThanOrEqual(60);
      });

      it('expireAt with a past deadline deletes the key at once', async () => {
        const key = name('k');
        await kv().set(key, 1);
        // "Sets an absolute deadline; a deadline already past deletes the key at once." The key existed: true.
        expect(await kv().expireAt(key, new Date(Date.now() - 1000))).toBe(true);
        expect(await kv().get(key)).toBeUndefined();
        expect(await kv().exists(key)).toBe(false);
        expect(await kv().ttl(key)).toBeUndefined();
        expect(await kv().expireAt(name('never'), new Date(Date.now() + 1000))).toBe(false);
      });

      it('set with expiresAt in the past leaves nothing visible, even over an existing value', async () => {
        const key = name('k');
        await kv().set(key, 'old');
        await kv().set(key, 'new', { expiresAt: new Date(Date.now() - 1000) });
        expect(await kv().get(key)).toBeUndefined();
        expect(await kv().exists(key)).toBe(false);
        expect(await kv().getEntry(key)).toBeUndefined();
        expect(await kv().getMany([key])).toEqual([undefined]);

        const fresh = name('k');
        await kv().set(fresh, 'v', { expiresAt: new Date(Date.now() - 1) });
        expect(await kv().get(fresh)).toBeUndefined();
      });

      it('set with expiresAt in the future expires at that deadline', async () => {
        const key = name('k');
        const at = new Date(Date.now() + 400);
        await kv().set(key, 'v', { expiresAt: at });
        const entry = await kv().getEntry(key);
        if (entry) expect(Math.abs(isoMs(entry.expiresAt) - at.getTime())).toBeLessThanOrEqual(1000);
        await sleep(700);
        expect(await kv().get(key)).toBeUndefined();
      });
    });

    describe('nx / xx', () => {
      it('nx writes a missing key and refuses an existing one', async () => {
        const key = name('k');
        expect(await kv().set(key, 'first', { nx: true })).toBe(true);
        expect(await kv().get(key)).toBe('first');
        expect(await kv().set(key, 'second', { nx: true })).toBe(false);
        expect(await kv().get(key)).toBe('first');
      });

      it('xx refuses a missing key and replaces an existing one', async () => {
        const key = name('k');
        expect(await kv().set(key, 'first', { xx: true })).toBe(false);
        expect(await kv().exists(key)).toBe(false);
        await kv().set(key, 'first');
        expect(await kv().set(key, 'second', { xx: true })).toBe(true);
        expect(await kv().get(key)).toBe('second');
      });

      it('concurrent nx writes: exactly one succeeds', async () => {
        const key = name('k');
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => kv().set(key, i, { nx: true })),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await kv().get(key)).toBe(results.indexOf(true));
      });

      it('an expired key does not exist: nx succeeds and xx refuses', async () => {
        const nx = name('k');
        const xx = name('k');
        await kv().set(nx, 'old', { ttl: 0.2 });
        await kv().set(xx, 'old', { ttl: 0.2 });
        await sleep(500);
        expect(await kv().set(nx, 'new', { nx: true })).toBe(true);
        expect(await kv().getEntry(nx)).toEqual({ value: 'new', expiresAt: null });
        expect(await kv().set(xx, 'new', { xx: true })).toBe(false);
        expect(await kv().exists(xx)).toBe(false);
      });

      it('nx with ttl writes the TTL too', async () => {
        const key = name('k');
        expect(await kv().set(key, 1, { nx: true, ttl: 100 })).toBe(true);
        expect(await kv().ttl(key)).toBeGreaterThan(90);
      });
    });

    describe('incr', () => {
      it('a missing key starts at 0 and is created without TTL', async () => {
        const key = name('k');
        expect(await kv().incr(key)).toBe(1);
        expect(await kv().incr(key)).toBe(2);
        expect(await kv().get(key)).toBe(2);
        expect(await kv().ttl(key)).toBeNull();
        const other = name('k');
        expect(await kv().incr(other, 5)).toBe(5);
      });

      it('an existing key keeps its TTL', async () => {
        const key = name('k');
        await kv().set(key, 10, { ttl: 100 });
        expect(await kv().incr(key, 5)).toBe(15);
        const left = await kv().ttl(key);
        expect(left).toBeGreaterThan(90);
        expect(left).toBeLessThanOrEqual(100);
      });

      it('an expired key starts again at 0 without TTL', async () => {
        const key = name('k');
        await kv().set(key, 40, { ttl: 0.2 });
        await sleep(500);
        expect(await kv().incr(key)).toBe(1);
        expect(await kv().ttl(key)).toBeNull();
      });

      it('by may be negative or zero', async () => {
        const key = name('k');
        await kv().set(key, 7);
        expect(await kv().incr(key, -10)).toBe(-3);
        expect(await kv().incr(key, 0)).toBe(-3);
        expect(await kv().get(key)).toBe(-3);
      });

      it('reaches ±(2^53−1) exactly', async () => {
        const up = name('k');
        await kv().set(up, MAX_SAFE - 1);
        expect(await kv().incr(up)).toBe(MAX_SAFE);
        const down = name('k');
        expect(await kv().incr(down, -MAX_SAFE)).toBe(-MAX_SAFE);
      });

      const notIntegers: [string, Json][] = [
        ['a string', 'abc'],
        ['a numeric string', '5'],
        ['a fraction', 1.5],
        ['an object', { n: 1 }],
        ['an array', [1]],
        ['a boolean', true],
        ['null', null],
      ];
      for (const [label, value] of notIntegers) {
        it(`a value that is ${label} throws ConflictError and is left unchanged`, async () => {
          const key = name('k');
          await kv().set(key, value, { ttl: 100 });
          await expectError(() => kv().incr(key), ConflictError);
          expect(await kv().get(key)).toEqual(value);
          expect(await kv().ttl(key)).toBeGreaterThan(90);
        });
      }

      it('a result beyond 2^53−1 throws ConflictError and changes nothing', async () => {
        const key = name('k');
        await kv().set(key, MAX_SAFE);
        await expectError(() => kv().incr(key), ConflictError);
        expect(await kv().get(key)).toBe(MAX_SAFE);
        await kv().set(key, 10);
        await expectError(() => kv().incr(key, MAX_SAFE), ConflictError);
        expect(await kv().get(key)).toBe(10);
      });

      it('a result below −(2^53−1) throws ConflictError and changes nothing', async () => {
        const key = name('k');
        await kv().set(key, -MAX_SAFE);
        await expectError(() => kv().incr(key, -1), ConflictError);
        expect(await kv().get(key)).toBe(-MAX_SAFE);
      });

      it('concurrent increments are not lost', async () => {
        const key = name('k');
        await Promise.all(Array.from({ length: 50 }, () => kv().incr(key)));
        expect(await kv().get(key)).toBe(50);
      });
    });

    describe('values', () => {
      const values: [string, Json][] = [
        ['null', null],
        ['false', false],
        ['true', true],
        ['0', 0],
        ['a negative fraction', -12.375],
        ['a large number', 1e300],
        ['the largest safe integer', MAX_SAFE],
        ['the empty string', ''],
        ['a string of spaces', '   '],
        ['a string with JSON in it', '{"a":1}'],
        ['unicode and emoji', 'Grüße, 世界 👋🏽 — ½ \u2028\u2029'],
        ['quotes and backslashes', 'say "hi" \\ \' `'],
        ['an empty array', []],
        ['an empty object', {}],
        ['nested objects and arrays', { a: [1, { b: [null, false, '', { c: 'd' }] }], e: { f: { g: {} } } }],
        ['an object with unusual keys', { '': 1, 'a.b': 2, $where: 3, __proto__x: 4, 'é👋': 5 }],
      ];
      for (const [label, value] of values) {
        it(`${label} round-trips through set/get/getEntry/getMany`, async () => {
          const key = name('v');
          await kv().set(key, value);
          expect(await kv().get(key)).toStrictEqual(value);
          expect(await kv().getEntry(key)).toStrictEqual({ value, expiresAt: null });
          expect(await kv().getMany([key])).toStrictEqual([value]);
          expect(await kv().exists(key)).toBe(true);
        });
      }

      it('a stored value is a copy: mutating the input or an answer changes nothing stored', async () => {
        const key = name('v');
        const value = { list: [1, 2], nested: { x: 1 } };
        await kv().set(key, value);
        value.list.push(3);
        value.nested.x = 99;
        const read = (await kv().get(key)) as { list: number[] };
        read.list.push(4);
        expect(await kv().get(key)).toEqual({ list: [1, 2], nested: { x: 1 } });
      });
    });

    describe('keys', () => {
      const keys: [string, string][] = [
        ['spaces', 'a key with spaces '],
        ['slashes', 'a/b/c//d/'],
        ['braces (hash-tag syntax)', '{tag}x{y}'],
        ['glob characters', 'k*?[ab]\\'],
        ['colons', 'a:b::c:'],
        ['unicode', 'ключ-鍵-🔑'],
        ['an SQL injection attempt', "'; DROP TABLE kv_store; --"],
        ['255 ASCII bytes', 'k'.repeat(255)],
        ['255 bytes of 3-byte characters', '€'.repeat(85)],
        ['254 bytes of 2-byte characters', 'é'.repeat(127)],
      ];
      for (const [label, raw] of keys) {
        it(`a key with ${label} is just a key`, async () => {
          // Long keys cannot take a unique suffix; give them a unique value instead and set/read/delete.
          const key = raw.length >= 85 ? raw : `${raw}${name('')}`;
          const value = name('value');
          await kv().set(key, value);
          expect(await kv().get(key)).toBe(value);
          expect(await kv().exists(key)).toBe(true);
          expect(await kv().getMany([key])).toEqual([value]);
          expect(await kv().delete(key)).toBe(true);
          expect(await kv().get(key)).toBeUndefined();
          expect(await kv().incr(key)).toBe(1);
          expect(await kv().delete(key)).toBe(true);
        });
      }

      it('keys are opaque: case, Unicode normalisation and prefixes make different keys', async () => {
        const base = name('K');
        const pairs = [
          [`${base}a`, `${base}A`],
          [`${base}\u00e9`, `${base}e\u0301`], // NFC vs NFD "é"
          [base, `${base} `],
          [base, `${base}*`],
        ];
        await kv().set(base, 'base');
        for (const [a, b] of pairs) {
          await kv().set(a!, `A:${a}`);
          await kv().set(b!, `B:${b}`);
          expect(await kv().get(a!)).toBe(`A:${a}`);
          expect(await kv().get(b!)).toBe(`B:${b}`);
        }
        // Deleting a key whose name looks like a pattern touches nothing else.
        expect(await kv().delete(`${base}*`)).toBe(true);
        expect(await kv().get(`${base}a`)).toBe(`A:${base}a`);
        expect(await kv().exists(`${base} `)).toBe(true);
      });

      it('the SQL injection key leaves the store working', async () => {
        const key = "'; DROP TABLE kv_store; --";
        await kv().set(key, 'harmless');
        expect(await kv().get(key)).toBe('harmless');
        const other = name('k');
        await kv().set(other, 1);
        expect(await kv().get(other)).toBe(1);
        await kv().delete(key);
      });
    });
  });
}
