/**
 * Bad input: every case throws `ValidationError` (from lib/errors) whose `field` names the
 * argument, and writes nothing.
 */
import { describe, expect, it } from 'vitest';
import { PayloadTooLargeError, ValidationError } from '../../lib/errors.js';
import type { Storage } from '../../lib/storage/types.js';
import type { Fixture } from '../support/fixture.js';
import { expectInvalid, name } from '../support/helpers.js';

/** Passes a deliberately ill-typed argument through the typed API. */
const bad = (value: unknown) => value as never;

const BAD_NAMES: [string, unknown][] = [
  ['empty', ''],
  ['256 ASCII bytes', 'k'.repeat(256)],
  ['256 bytes of 2-byte characters (128 × é)', 'é'.repeat(128)],
  ['258 bytes of 3-byte characters (86 × €)', '€'.repeat(86)],
  ['a newline', 'a\nb'],
  ['a NUL', 'a\u0000b'],
  ['DEL (\\u007f)', 'a\u007fb'],
  ['a tab', 'a\tb'],
  ['a C1 control (\\u0085)', 'a\u0085b'],
  ['a lone high surrogate', 'a\ud800b'],
  ['a lone low surrogate', '\udc00'],
  ['a number', 42],
  ['null', null],
  ['undefined', undefined],
];

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

function circular(): unknown {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
}

/** Values that are not plain JSON. Each builder answers a fresh value. */
const NOT_JSON: [string, () => unknown][] = [
  ['undefined', () => undefined],
  ['a function', () => () => 1],
  ['a BigInt', () => 10n],
  ['a Symbol', () => Symbol('s')],
  ['NaN', () => Number.NaN],
  ['Infinity', () => Number.POSITIVE_INFINITY],
  ['-Infinity', () => Number.NEGATIVE_INFINITY],
  ['a circular object', circular],
  ['a Date', () => new Date()],
  ['a Map', () => new Map([['a', 1]])],
  ['a Set', () => new Set([1])],
  ['a class instance', () => new Point(1, 2)],
  ['a string with a lone surrogate', () => 'bad \ud800 string'],
  ['undefined inside an array', () => [1, undefined, 3]],
  ['a property that is undefined', () => ({ a: 1, b: undefined })],
  ['a nested function', () => ({ ok: { handler() {} } })],
  ['a nested NaN', () => ({ list: [{ n: Number.NaN }] })],
  ['a nested BigInt', () => [[1n]]],
  ['a nested Date', () => ({ when: new Date() })],
];

const BAD_SECONDS: [string, unknown][] = [
  ['negative', -1],
  ['zero', 0],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['a string', '5'],
  ['null', null],
];

const DEFAULT_MAX_VALUE_BYTES = 256 * 1024;

export function describeValidation(f: Fixture): void {
  const s = () => f.storage();

  describe('validation', () => {
    describe('names', () => {
      // kv.set is the reference case: each bad name as its own test.
      for (const [label, value] of BAD_NAMES) {
        it(`kv.set refuses a key that is ${label}`, async () => {
          await expectInvalid(() => s().kv.set(bad(value), 'v'), 'key');
        });
      }

      // Every other operation taking a name (keys, queues, channels, cluster ids, session ids).
      const ops: [string, string, (st: Storage, n: never) => unknown][] = [
        ['kv.get', 'key', (st, n) => st.kv.get(n)],
        ['kv.getEntry', 'key', (st, n) => st.kv.getEntry(n)],
        ['kv.delete', 'key', (st, n) => st.kv.delete(n)],
        ['kv.exists', 'key', (st, n) => st.kv.exists(n)],
        ['kv.expire', 'key', (st, n) => st.kv.expire(n, 10)],
        ['kv.expireAt', 'key', (st, n) => st.kv.expireAt(n, new Date(Date.now() + 10_000))],
        ['kv.ttl', 'key', (st, n) => st.kv.ttl(n)],
        ['kv.incr', 'key', (st, n) => st.kv.incr(n)],
        ['kv.getMany', 'keys', (st, n) => st.kv.getMany([name('ok'), n])],
        ['kv.setMany', 'key', (st, n) => st.kv.setMany([{ key: n, value: 1 }])],
        ['sessions.create', 'clusterId', (st, n) => st.sessions.create({ clusterId: n })],
        ['sessions.get', 'sessionId', (st, n) => st.sessions.get(n)],
        ['sessions.keepAlive', 'sessionId', (st, n) => st.sessions.keepAlive(n)],
        ['sessions.end', 'sessionId', (st, n) => st.sessions.end(n)],
        ['sessions.byCluster', 'clusterId', (st, n) => st.sessions.byCluster(n)],
        ['sessions.isClusterActive', 'clusterId', (st, n) => st.sessions.isClusterActive(n)],
        ['queues.send', 'queue', (st, n) => st.queues.send(n, 1)],
        ['queues.receive', 'queue', (st, n) => st.queues.receive(n)],
        ['queues.ack', 'queue', (st, n) => st.queues.ack(n, 'id', 'receipt')],
        ['queues.nack', 'queue', (st, n) => st.queues.nack(n, 'id', 'receipt')],
        ['queues.extend', 'queue', (st, n) => st.queues.extend(n, 'id', 'receipt', 10)],
        ['queues.stats', 'queue', (st, n) => st.queues.stats(n)],
        ['queues.deadLetters', 'queue', (st, n) => st.queues.deadLetters(n)],
        ['queues.redrive', 'queue', (st, n) => st.queues.redrive(n)],
        ['events.publish', 'channel', (st, n) => st.events.publish(n, 1)],
        ['events.history', 'channel', (st, n) => st.events.history(n)],
        ['events.subscribe', 'channel', (st, n) => st.events.subscribe(n, () => {})],
      ];
      for (const [op, field, call] of ops) {
        it(`${op} refuses bad names in ${field} (empty, > 255 bytes, control characters, lone surrogates, non-strings)`, async () => {
          for (const [label, value] of BAD_NAMES) {
            await expectInvalid(() => call(s(), bad(value)), field, `${op} with ${field} ${label}`);
          }
        });
      }

      it('a name of exactly 255 bytes is accepted everywhere a 256-byte one is refused', async () => {
        const ok = `${name('q')}-`.padEnd(255, 'q');
        expect(Buffer.byteLength(ok)).toBe(255);
        await s().queues.send(ok, 1);
        expect((await s().queues.stats(ok)).depth).toBe(1);
        await s().events.publish(ok, 1);
        expect(await s().events.history(ok)).toHaveLength(1);
        await s().sessions.create({ clusterId: ok });
        expect(await s().sessions.isClusterActive(ok)).toBe(true);
      });
    });

    describe('values that are not JSON', () => {
      for (const [label, make] of NOT_JSON) {
        it(`kv.set refuses ${label} and writes nothing`, async () => {
          const fresh = name('k');
          await expectInvalid(() => s().kv.set(fresh, bad(make())), 'value');
          expect(await s().kv.exists(fresh)).toBe(false);
          const existing = name('k');
          await s().kv.set(existing, 'old');
          await expectInvalid(() => s().kv.set(existing, bad(make())), 'value');
          expect(await s().kv.get(existing)).toBe('old');
        });
      }

      it('setMany refuses a non-JSON value in any entry and writes none of them', async () => {
        for (const [label, make] of NOT_JSON) {
          const keys = [name('a'), name('b'), name('c')];
          await expectInvalid(
            () =>
              s().kv.setMany([
                { key: keys[0]!, value: 1 },
                { key: keys[1]!, value: bad(make()) },
                { key: keys[2]!, value: 3 },
              ]),
            'value',
            `setMany with ${label}`,
          );
          expect(await s().kv.getMany(keys), label).toEqual([undefined, undefined, undefined]);
        }
      });

      it('queues.send refuses non-JSON payloads and enqueues nothing', async () => {
        const queue = name('q');
        for (const [label, make] of NOT_JSON) {
          await expectInvalid(() => s().queues.send(queue, bad(make())), 'payload', `send with ${label}`);
        }
        expect(await s().queues.stats(queue)).toEqual({ depth: 0, delayed: 0, inFlight: 0, dead: 0 });
      });

      it('events.publish refuses non-JSON messages and publishes nothing', async () => {
        const channel = name('ch');
        for (const [label, make] of NOT_JSON) {
          await expectInvalid(
            () => s().events.publish(channel, bad(make())),
            'message',
            `publish with ${label}`,
          );
        }
        expect(await s().events.history(channel)).toEqual([]);
      });

      it('sessions.create refuses non-JSON data and creates nothing', async () => {
        const clusterId = name('c');
        for (const [label, make] of NOT_JSON) {
          await expectInvalid(
            () => s().sessions.create({ clusterId, data: bad({ inner: make() }) }),
            'data',
            `create with data containing ${label}`,
          );
        }
        expect(await s().sessions.isClusterActive(clusterId)).toBe(false);
      });

      it('audit.append refuses non-JSON details and appends nothing', async () => {
        const identity = name('who');
        for (const [label, make] of NOT_JSON) {
          await expectInvalid(
            () => s().audit.append({ identity, action: 'x', details: bad({ inner: make() }) }),
            'details',
            `append with details containing ${label}`,
          );
        }
        expect(await s().audit.query({ identity })).toEqual([]);
      });
    });

    describe('oversize values', () => {
      // A JSON string of n ASCII characters serialises to n + 2 bytes.
      const exactly = (bytes: number) => 'x'.repeat(bytes - 2);

      it('a value of exactly limits.maxValueBytes (default 256 KiB) is accepted', async () => {
        const key = name('k');
        await s().kv.set(key, exactly(DEFAULT_MAX_VALUE_BYTES));
        expect(((await s().kv.get(key)) as string).length).toBe(DEFAULT_MAX_VALUE_BYTES - 2);
      });

      it('kv.set over the limit throws PayloadTooLargeError and keeps the old value', async () => {
        const key = name('k');
        await s().kv.set(key, 'old');
        const error = await expectInvalid(
          () => s().kv.set(key, exactly(DEFAULT_MAX_VALUE_BYTES + 1)),
          'value',
        );
        expect(error).toBeInstanceOf(PayloadTooLargeError);
        expect(error.code).toBe('payload_too_large');
        expect(error.status).toBe(413);
        expect(await s().kv.get(key)).toBe('old');
        // Counted in UTF-8 bytes, not characters: 131,072 × é is 262,144 bytes plus quotes.
        await expectInvalid(() => s().kv.set(key, 'é'.repeat(DEFAULT_MAX_VALUE_BYTES / 2)), 'value');
        expect(await s().kv.get(key)).toBe('old');
      });

      it('the limit follows limits.maxValueBytes, for every store', async () => {
        const small = f.withConfig({ limits: { maxValueBytes: 1024 } });
        const big = { blob: 'y'.repeat(1100) };
        const key = name('k');
        const queue = name('q');
        const channel = name('ch');
        const clusterId = name('c');
        const identity = name('who');
        const checks: [string, string, () => unknown][] = [
          ['kv.set', 'value', () => small.kv.set(key, big)],
          ['kv.setMany', 'value', () => small.kv.setMany([{ key, value: big }])],
          ['queues.send', 'payload', () => small.queues.send(queue, big)],
          ['events.publish', 'message', () => small.events.publish(channel, big)],
          ['sessions.create', 'data', () => small.sessions.create({ clusterId, data: big })],
          ['audit.append', 'details', () => small.audit.append({ identity, action: 'x', details: big })],
        ];
        for (const [op, field, call] of checks) {
          const error = await expectInvalid(call, field, op);
          expect(error, op).toBeInstanceOf(PayloadTooLargeError);
          expect(error.code, op).toBe('payload_too_large');
        }
        expect(await small.kv.exists(key)).toBe(false);
        expect((await small.queues.stats(queue)).depth).toBe(0);
        expect(await small.events.history(channel)).toEqual([]);
        expect(await small.sessions.isClusterActive(clusterId)).toBe(false);
        expect(await small.audit.query({ identity })).toEqual([]);
        // Below the limit still works.
        expect(await small.kv.set(key, { blob: 'y'.repeat(900) })).toBe(true);
      });
    });

    describe('durations', () => {
      for (const [label, value] of BAD_SECONDS) {
        it(`a ttl that is ${label} is refused everywhere, writing nothing`, async () => {
          const key = name('k');
          await expectInvalid(() => s().kv.set(key, 1, { ttl: bad(value) }), 'ttl', 'kv.set');
          expect(await s().kv.exists(key)).toBe(false);

          await expectInvalid(
            () => s().kv.setMany([{ key, value: 1, ttl: bad(value) }]),
            'ttl',
            'kv.setMany',
          );
          expect(await s().kv.exists(key)).toBe(false);

          const kept = name('k');
          await s().kv.set(kept, 1);
          // expire(key, null) is valid: it removes the TTL.
          if (value !== null) {
            await expectInvalid(() => s().kv.expire(kept, bad(value)), 'ttl', 'kv.expire');
            expect(await s().kv.ttl(kept)).toBeNull();
          }

          const clusterId = name('c');
          await expectInvalid(
            () => s().sessions.create({ clusterId, ttl: bad(value) }),
            'ttl',
            'sessions.create',
          );
          expect(await s().sessions.isClusterActive(clusterId)).toBe(false);

          const session = await s().sessions.create({ clusterId: name('c'), ttl: 60 });
          await expectInvalid(
            () => s().sessions.keepAlive(session.sessionId, bad(value)),
            'ttl',
            'keepAlive',
          );
          expect((await s().sessions.get(session.sessionId))?.expiresAt).toBe(session.expiresAt);

          const identity = name('who');
          await expectInvalid(
            () => s().tokens.issue({ identity, scopes: ['kv:read'], ttl: bad(value) }),
            'ttl',
            'tokens.issue',
          );
          expect((await s().tokens.list()).filter((t) => t.identity === identity)).toEqual([]);
        });
      }

      it('visibilityTimeout must be > 0 (and at most 12 h on receive), on receive and extend', async () => {
        const queue = name('q');
        await s().queues.send(queue, 1);
        for (const value of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5', 43_201]) {
          await expectInvalid(
            () => s().queues.receive(queue, { visibilityTimeout: bad(value) }),
            'visibilityTimeout',
            `receive visibilityTimeout ${String(value)}`,
          );
        }
        expect((await s().queues.stats(queue)).inFlight).toBe(0);
        const [m] = await s().queues.receive(queue, { visibilityTimeout: 43_200 });
        for (const value of [0, -1, Number.NaN, '5']) {
          await expectInvalid(
            () => s().queues.extend(queue, m!.id, m!.receipt, bad(value)),
            'visibilityTimeout',
            `extend ${String(value)}`,
          );
        }
        await s().queues.ack(queue, m!.id, m!.receipt);
      });

      it('delay must be between 0 and 7 days, on send and nack', async () => {
        const queue = name('q');
        for (const value of [-1, Number.NaN, Number.POSITIVE_INFINITY, '1', 604_801]) {
          await expectInvalid(
            () => s().queues.send(queue, 1, { delay: bad(value) }),
            'delay',
            `send delay ${String(value)}`,
          );
        }
        expect((await s().queues.stats(queue)).depth).toBe(0);
        await s().queues.send(queue, 'edge', { delay: 604_800 });
        await s().queues.send(queue, 'now', { delay: 0 });
        const [m] = await s().queues.receive(queue);
        expect(m?.payload).toBe('now');
        await expectInvalid(() => s().queues.nack(queue, m!.id, m!.receipt, { delay: -1 }), 'delay', 'nack');
        expect((await s().queues.stats(queue)).inFlight).toBe(1);
      });

      it('incr by must be a safe integer, and the value is unchanged', async () => {
        const key = name('k');
        await s().kv.set(key, 5);
        for (const by of [1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, -(2 ** 53), '1', null]) {
          await expectInvalid(() => s().kv.incr(key, bad(by)), 'by', `incr by ${String(by)}`);
        }
        expect(await s().kv.get(key)).toBe(5);
      });

      it('dates must be valid Dates', async () => {
        const key = name('k');
        await s().kv.set(key, 1);
        await expectInvalid(() => s().kv.expireAt(key, new Date('not a date')), 'at', 'expireAt invalid');
        await expectInvalid(() => s().kv.expireAt(key, bad(Date.now() + 1000)), 'at', 'expireAt number');
        await expectInvalid(() => s().kv.set(key, 2, { expiresAt: bad('tomorrow') }), 'expiresAt', 'set');
        // A deadline further ahead than the longest TTL (ten years) is refused like that TTL.
        await expectInvalid(
          () => s().kv.set(key, 2, { expiresAt: new Date(8.64e15) }),
          'expiresAt',
          'set far',
        );
        await expectInvalid(() => s().kv.expireAt(key, new Date('3000-01-01')), 'at', 'expireAt far');
        expect(await s().kv.getEntry(key)).toEqual({ value: 1, expiresAt: null });
        await expectInvalid(() => s().audit.query({ since: new Date('x') }), 'since', 'audit since');
        await expectInvalid(() => s().audit.query({ until: bad('2026-01-01') }), 'until', 'audit until');
      });
    });

    describe('counts and limits', () => {
      it('receive max must be 1–100', async () => {
        const queue = name('q');
        await s().queues.send(queue, 1);
        for (const max of [0, 101, 1.5, -1, '2']) {
          await expectInvalid(() => s().queues.receive(queue, { max: bad(max) }), 'max', `max ${max}`);
        }
        expect((await s().queues.stats(queue)).inFlight).toBe(0);
      });

      it('receive wait must be 0–20', async () => {
        const queue = name('q');
        for (const wait of [21, -1, Number.NaN, '1']) {
          await expectInvalid(() => s().queues.receive(queue, { wait: bad(wait) }), 'wait', `wait ${wait}`);
        }
      });

      it('limits outside their ranges are refused', async () => {
        const queue = name('q');
        const channel = name('ch');
        for (const limit of [0, 1001, 1.5]) {
          await expectInvalid(
            () => s().queues.deadLetters(queue, { limit }),
            'limit',
            `deadLetters ${limit}`,
          );
          await expectInvalid(() => s().queues.redrive(queue, { limit }), 'limit', `redrive ${limit}`);
          await expectInvalid(() => s().events.history(channel, { limit }), 'limit', `history ${limit}`);
          await expectInvalid(() => s().audit.query({ limit }), 'limit', `audit ${limit}`);
        }
      });

      it('getMany and setMany take at most 1000 keys', async () => {
        const keys = Array.from({ length: 1001 }, (_, i) => `${name('k')}-${i}`);
        await expectInvalid(() => s().kv.getMany(keys), 'keys');
        await expectInvalid(() => s().kv.setMany(keys.map((key) => ({ key, value: 1 }))), 'entries');
        expect(await s().kv.getMany(keys.slice(0, 1000))).toEqual(keys.slice(0, 1000).map(() => undefined));
      });
    });

    describe('options', () => {
      it('nx and xx together are refused and nothing is written', async () => {
        const key = name('k');
        await expectInvalid(() => s().kv.set(key, 1, { nx: true, xx: true }), ['nx', 'xx', 'options']);
        expect(await s().kv.exists(key)).toBe(false);
        await s().kv.set(key, 'old');
        await expectInvalid(() => s().kv.set(key, 'new', { nx: true, xx: true }), ['nx', 'xx', 'options']);
        expect(await s().kv.get(key)).toBe('old');
      });

      it('kv.set refuses an unknown option key (a typo like tll) and writes nothing', async () => {
        const key = name('k');
        await expectInvalid(() => s().kv.set(key, 1, bad({ tll: 5 })), 'tll');
        expect(await s().kv.exists(key)).toBe(false);
      });

      it('every other options-taking method refuses unknown option keys', async () => {
        const q = name('q');
        const ch = name('ch');
        await s().queues.send(q, 1);
        const [m] = await s().queues.receive(q, { visibilityTimeout: 60 });
        const cases: [string, string, () => unknown][] = [
          ['queues.send', 'delya', () => s().queues.send(q, 2, bad({ delya: 1 }))],
          ['queues.receive', 'maxx', () => s().queues.receive(q, bad({ maxx: 2 }))],
          ['queues.nack', 'dealy', () => s().queues.nack(q, m!.id, m!.receipt, bad({ dealy: 1 }))],
          ['queues.deadLetters', 'lmit', () => s().queues.deadLetters(q, bad({ lmit: 1 }))],
          ['queues.redrive', 'lmit', () => s().queues.redrive(q, bad({ lmit: 1 }))],
          ['events.history', 'aftr', () => s().events.history(ch, bad({ aftr: '1' }))],
          ['events.subscribe', 'aftr', () => s().events.subscribe(ch, () => {}, bad({ aftr: '1' }))],
          ['audit.query', 'identiy', () => s().audit.query(bad({ identiy: 'x' }))],
          ['sweep', 'batch', () => s().sweep(bad({ batch: 10 }))],
          ['connections.subscribers', 'lmit', () => s().connections.subscribers(ch, bad({ lmit: 1 }))],
        ];
        for (const [op, field, call] of cases) await expectInvalid(call, field, op);
        // The send was refused and the nack too: the leased message is still in flight.
        expect(await s().queues.stats(q)).toMatchObject({ depth: 0, inFlight: 1 });
        expect(await s().events.history(ch)).toEqual([]);
      });

      it('input objects refuse unknown keys and write nothing', async () => {
        const key = name('k');
        const clusterId = name('c');
        const identity = name('who');
        await expectInvalid(() => s().kv.setMany([bad({ key, value: 1, tll: 5 })]), 'tll', 'setMany entry');
        expect(await s().kv.exists(key)).toBe(false);
        await expectInvalid(() => s().sessions.create(bad({ clusterId, tll: 5 })), 'tll', 'sessions.create');
        expect(await s().sessions.isClusterActive(clusterId)).toBe(false);
        await expectInvalid(
          () => s().tokens.issue(bad({ identity, scopes: ['kv:read'], scope: 'admin' })),
          'scope',
          'tokens.issue',
        );
        expect((await s().tokens.list()).filter((t) => t.identity === identity)).toEqual([]);
        const connectionId = name('conn');
        await expectInvalid(
          () =>
            s().connections.register(
              bad({ connectionId, identity, scopes: ['events:subscribe'], resources: ['*'], tll: 5 }),
            ),
          'tll',
          'connections.register',
        );
        expect(await s().connections.get(connectionId)).toBeUndefined();
        await expectInvalid(
          () => s().audit.append(bad({ identity, action: 'x', who: 'y' })),
          'who',
          'audit.append',
        );
        expect(await s().audit.query({ identity })).toEqual([]);
      });

      it('options that are not objects are refused', async () => {
        const key = name('k');
        await expectInvalid(() => s().kv.set(key, 1, bad(5)), 'options');
        await expectInvalid(() => s().queues.receive(name('q'), bad('fast')), 'options');
        expect(await s().kv.exists(key)).toBe(false);
      });

      it('nx and xx must be booleans', async () => {
        const key = name('k');
        await expectInvalid(() => s().kv.set(key, 1, { nx: bad('yes') }), 'nx');
        await expectInvalid(() => s().kv.set(key, 1, { xx: bad(1) }), 'xx');
        expect(await s().kv.exists(key)).toBe(false);
      });
    });

    describe('tokens, sessions and audit input', () => {
      it('tokens.issue refuses unknown scopes and issues nothing', async () => {
        const identity = name('who');
        for (const scopes of [['kv:read', 'root'], ['KV:READ'], ['*'], 'admin', [42]]) {
          await expectInvalid(
            () => s().tokens.issue({ identity, scopes: bad(scopes) }),
            'scopes',
            `scopes ${JSON.stringify(scopes)}`,
          );
        }
        expect((await s().tokens.list()).filter((t) => t.identity === identity)).toEqual([]);
      });

      it('sessions.create refuses data that is not an object and creates nothing', async () => {
        const clusterId = name('c');
        for (const data of [[], [1, 2], 'text', 42, true, null, new Date(), new Map()]) {
          await expectInvalid(
            () => s().sessions.create({ clusterId, data: bad(data) }),
            'data',
            String(data),
          );
        }
        expect(await s().sessions.isClusterActive(clusterId)).toBe(false);
        expect(await s().sessions.byCluster(clusterId)).toEqual([]);
      });

      it('sessions.create requires an input object with a clusterId', async () => {
        await expectInvalid(() => s().sessions.create(bad({})), 'clusterId');
        await expectInvalid(() => s().sessions.create(bad(undefined)), ['input', 'clusterId']);
      });

      it('audit.append refuses an unknown outcome and appends nothing', async () => {
        const identity = name('who');
        await expectInvalid(
          () => s().audit.append({ identity, action: 'x', outcome: bad('maybe') }),
          'outcome',
        );
        expect(await s().audit.query({ identity })).toEqual([]);
      });

      it('audit.query refuses an unknown order', async () => {
        await expectInvalid(() => s().audit.query({ order: bad('newest') }), 'order');
      });
    });

    describe('errors are rejections', () => {
      it('bad arguments reject the returned promise rather than throwing synchronously', async () => {
        // Every method returns a Promise, so `store.method(…).catch(…)` must see bad input too.
        const st = s();
        const calls: [string, () => unknown][] = [
          ['kv.get', () => st.kv.get(bad(''))],
          ['kv.getEntry', () => st.kv.getEntry(bad(''))],
          ['kv.set', () => st.kv.set(bad(''), 1)],
          ['kv.delete', () => st.kv.delete(bad(''))],
          ['kv.exists', () => st.kv.exists(bad(''))],
          ['kv.expire', () => st.kv.expire(bad(''), 1)],
          ['kv.expireAt', () => st.kv.expireAt(bad(''), new Date())],
          ['kv.ttl', () => st.kv.ttl(bad(''))],
          ['kv.incr', () => st.kv.incr(bad(''))],
          ['kv.getMany', () => st.kv.getMany(bad(''))],
          ['kv.setMany', () => st.kv.setMany(bad(''))],
          ['sessions.create', () => st.sessions.create(bad({}))],
          ['sessions.get', () => st.sessions.get(bad(''))],
          ['sessions.keepAlive', () => st.sessions.keepAlive(bad(''))],
          ['sessions.end', () => st.sessions.end(bad(''))],
          ['sessions.byCluster', () => st.sessions.byCluster(bad(''))],
          ['sessions.isClusterActive', () => st.sessions.isClusterActive(bad(''))],
          ['queues.send', () => st.queues.send(bad(''), 1)],
          ['queues.receive', () => st.queues.receive(bad(''))],
          ['queues.ack', () => st.queues.ack(bad(''), 'i', 'r')],
          ['queues.nack', () => st.queues.nack(bad(''), 'i', 'r')],
          ['queues.extend', () => st.queues.extend(bad(''), 'i', 'r', 1)],
          ['queues.stats', () => st.queues.stats(bad(''))],
          ['queues.deadLetters', () => st.queues.deadLetters(bad(''))],
          ['queues.redrive', () => st.queues.redrive(bad(''))],
          ['events.publish', () => st.events.publish(bad(''), 1)],
          ['events.history', () => st.events.history(bad(''))],
          ['events.subscribe', () => st.events.subscribe(bad(''), () => {})],
          ['tokens.issue', () => st.tokens.issue(bad({}))],
          ['tokens.issue scopes', () => st.tokens.issue(bad({ identity: 'x', scopes: ['root'] }))],
          ['audit.append', () => st.audit.append(bad({}))],
          ['audit.query', () => st.audit.query(bad({ limit: 0 }))],
          ['sweep', () => st.sweep(bad({ batchSize: 0 }))],
          ['connections.register', () => st.connections.register(bad({}))],
          ['connections.get', () => st.connections.get(bad(''))],
          ['connections.subscribe', () => st.connections.subscribe(bad(''), 'ch')],
          ['connections.unsubscribe', () => st.connections.unsubscribe(bad(''), 'ch')],
          ['connections.subscribers', () => st.connections.subscribers(bad(''))],
          ['connections.remove', () => st.connections.remove(bad(''))],
        ];
        const syncThrows: string[] = [];
        for (const [op, call] of calls) {
          let result: unknown;
          try {
            result = call();
          } catch {
            syncThrows.push(op);
            continue;
          }
          await expect(result, op).rejects.toBeInstanceOf(ValidationError);
        }
        expect(syncThrows, 'methods that threw synchronously instead of rejecting').toEqual([]);
      });
    });
  });
}
