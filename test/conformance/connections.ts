import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../lib/errors.js';
import type { ConnectionStore, RegisterConnectionInput, Scope } from '../../lib/storage/types.js';
import type { Fixture } from '../support/fixture.js';
import { expectError, expectInvalid, isoMs, name, sleep } from '../support/helpers.js';

/** Passes a deliberately ill-typed argument through the typed API. */
const bad = (value: unknown) => value as never;

const CONNECTION_KEYS = [
  'channels',
  'connectedAt',
  'connectionId',
  'expiresAt',
  'identity',
  'resources',
  'scopes',
];

const BAD_NAMES: [string, unknown][] = [
  ['empty', ''],
  ['256 ASCII bytes', 'k'.repeat(256)],
  ['256 bytes of 2-byte characters', 'é'.repeat(128)],
  ['a newline', 'a\nb'],
  ['a NUL', 'a\u0000b'],
  ['a C1 control', 'a\u0085b'],
  ['a lone surrogate', 'a\ud800b'],
  ['a number', 42],
  ['null', null],
  ['undefined', undefined],
];

/** Compares as Redis and Postgres (COLLATE "C") do: by UTF-8 bytes. */
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Runs `tasks` with at most `width` in flight. */
async function inBatches<T>(tasks: (() => Promise<T>)[], width = 25): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < tasks.length; i += width) {
    results.push(...(await Promise.all(tasks.slice(i, i + width).map((task) => task()))));
  }
  return results;
}

/** Every subscriber of `channel`, page by page; answers the pages. */
async function allPages(store: ConnectionStore, channel: string, limit?: number): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = await store.subscribers(channel, limit === undefined ? { cursor } : { cursor, limit });
    pages.push(page.connectionIds);
    cursor = page.cursor;
    if (pages.length > 1000) throw new Error('subscribers() never ended');
  } while (cursor !== undefined);
  return pages;
}

/** Sleeps until `expiresAt` has passed by a margin (for a backend clock a little ahead of ours). */
async function pastExpiry(expiresAt: string): Promise<void> {
  await sleep(Math.max(0, Date.parse(expiresAt) - Date.now()) + 250);
}

export function describeConnections(f: Fixture): void {
  const c = () => f.storage().connections;
  const input = (overrides: Partial<RegisterConnectionInput> = {}): RegisterConnectionInput => ({
    connectionId: name('conn'),
    identity: name('who'),
    scopes: ['events:subscribe'],
    resources: ['*'],
    ...overrides,
  });

  describe('connections', () => {
    describe('register / get', () => {
      it('register answers the connection with no channels; get answers the same', async () => {
        const i = input({
          scopes: ['events:subscribe', 'events:publish'],
          resources: ['team-a/*', 'alerts'],
        });
        const before = Date.now();
        const registered = await c().register(i);
        const after = Date.now();
        expect(Object.keys(registered).sort()).toEqual(CONNECTION_KEYS);
        expect(registered).toMatchObject({
          connectionId: i.connectionId,
          identity: i.identity,
          scopes: ['events:subscribe', 'events:publish'],
          resources: ['team-a/*', 'alerts'],
          channels: [],
        });
        // Allow a second of clock difference between this process and the backend.
        const connectedAt = isoMs(registered.connectedAt);
        expect(connectedAt).toBeGreaterThanOrEqual(before - 1000);
        expect(connectedAt).toBeLessThanOrEqual(after + 1000);
        // Default lifetime: API Gateway's 2 h.
        expect(isoMs(registered.expiresAt) - connectedAt).toBe(7_200_000);
        expect(await c().get(i.connectionId)).toEqual(registered);
      });

      it('ttl sets the lifetime; duplicate scopes are kept once', async () => {
        const registered = await c().register(
          input({ ttl: 60.5, scopes: ['events:subscribe', 'events:subscribe', 'admin'] }),
        );
        expect(isoMs(registered.expiresAt) - isoMs(registered.connectedAt)).toBe(60_500);
        expect(registered.scopes).toEqual(['events:subscribe', 'admin']);
        expect((await c().get(registered.connectionId))?.scopes).toEqual(['events:subscribe', 'admin']);
      });

      it('get answers undefined for an unknown connection', async () => {
        expect(await c().get(name('never'))).toBeUndefined();
      });

      it('the answer is a copy: changing it changes nothing stored', async () => {
        const registered = await c().register(input());
        registered.scopes.push('admin' as Scope);
        registered.resources.push('x');
        const fetched = await c().get(registered.connectionId);
        expect(fetched?.scopes).toEqual(['events:subscribe']);
        expect(fetched?.resources).toEqual(['*']);
        fetched?.channels.push('x');
        expect((await c().get(registered.connectionId))?.channels).toEqual([]);
      });

      it('registering an id again replaces it and drops its subscriptions, in both directions', async () => {
        const connectionId = name('conn');
        const [ch1, ch2] = [name('ch'), name('ch')];
        await c().register(input({ connectionId, identity: 'first' }));
        expect(await c().subscribe(connectionId, ch1)).toBe(true);
        expect(await c().subscribe(connectionId, ch2)).toBe(true);
        const replaced = await c().register(
          input({ connectionId, identity: 'second', scopes: ['admin'], resources: ['r'] }),
        );
        expect(replaced).toMatchObject({
          connectionId,
          identity: 'second',
          scopes: ['admin'],
          resources: ['r'],
          channels: [],
        });
        expect(await c().get(connectionId)).toEqual(replaced);
        expect((await c().subscribers(ch1)).connectionIds).toEqual([]);
        expect((await c().subscribers(ch2)).connectionIds).toEqual([]);
        // The new registration subscribes afresh.
        expect(await c().subscribe(connectionId, ch2)).toBe(true);
        expect((await c().get(connectionId))?.channels).toEqual([ch2]);
        expect((await c().subscribers(ch2)).connectionIds).toEqual([connectionId]);
      });

      it('ids and channels are opaque: braces, quotes, spaces and non-ASCII are just names', async () => {
        const ids = [
          'a}:subs:x',
          '{ws}',
          "'; DROP TABLE ws_connections; --",
          'id with spaces',
          'ünï-€-😀',
        ].map((id) => `${id}-${name('')}`);
        const channel = `{ws}:subs:${name('ch')}`;
        for (const connectionId of ids) {
          await c().register(input({ connectionId }));
          expect(await c().subscribe(connectionId, channel)).toBe(true);
          expect((await c().get(connectionId))?.channels).toEqual([channel]);
        }
        expect((await c().subscribers(channel)).connectionIds).toEqual([...ids].sort(byBytes));
        // Names that look like each other's keys stay apart.
        expect((await c().subscribers('{ws}')).connectionIds).toEqual([]);
        expect(await c().get('{ws}')).toBeUndefined();
      });
    });

    describe('subscribe / unsubscribe', () => {
      it('subscribe is idempotent: the channel is listed once on both sides', async () => {
        const { connectionId } = await c().register(input());
        const channel = name('ch');
        expect(await c().subscribe(connectionId, channel)).toBe(true);
        expect(await c().subscribe(connectionId, channel)).toBe(true);
        expect((await c().get(connectionId))?.channels).toEqual([channel]);
        expect(await c().subscribers(channel)).toEqual({ connectionIds: [connectionId] });
      });

      it('channels are answered sorted by their UTF-8 bytes', async () => {
        const { connectionId } = await c().register(input());
        const p = name('ch');
        const channels = [`${p}-b`, `${p}-😀`, `${p}-a`, `${p}-\uFFFD`, `${p}-Z`, `${p}-é`, `${p}-a-a`];
        for (const channel of channels) await c().subscribe(connectionId, channel);
        // UTF-16 order would put 😀 (a surrogate pair) before U+FFFD; byte order puts it after.
        expect((await c().get(connectionId))?.channels).toEqual([
          `${p}-Z`,
          `${p}-a`,
          `${p}-a-a`,
          `${p}-b`,
          `${p}-é`,
          `${p}-\uFFFD`,
          `${p}-😀`,
        ]);
      });

      it('subscribe answers false and subscribes nothing for an unknown connection', async () => {
        const connectionId = name('never');
        const channel = name('ch');
        expect(await c().subscribe(connectionId, channel)).toBe(false);
        expect((await c().subscribers(channel)).connectionIds).toEqual([]);
        // Registering it later does not bring back a subscription that never was.
        await c().register(input({ connectionId }));
        expect((await c().get(connectionId))?.channels).toEqual([]);
        expect((await c().subscribers(channel)).connectionIds).toEqual([]);
      });

      it('unsubscribe answers whether the connection was subscribed, and removes only that channel', async () => {
        const { connectionId } = await c().register(input());
        const [keep, drop] = [name('ch'), name('ch')];
        await c().subscribe(connectionId, keep);
        await c().subscribe(connectionId, drop);
        expect(await c().unsubscribe(connectionId, drop)).toBe(true);
        expect(await c().unsubscribe(connectionId, drop)).toBe(false);
        expect(await c().unsubscribe(connectionId, name('never'))).toBe(false);
        expect(await c().unsubscribe(name('never'), keep)).toBe(false);
        expect((await c().get(connectionId))?.channels).toEqual([keep]);
        expect((await c().subscribers(drop)).connectionIds).toEqual([]);
        expect((await c().subscribers(keep)).connectionIds).toEqual([connectionId]);
        // Subscribing again after an unsubscribe works.
        expect(await c().subscribe(connectionId, drop)).toBe(true);
        expect((await c().subscribers(drop)).connectionIds).toEqual([connectionId]);
      });

      it('a connection subscribes to at most 100 channels: one more is a ConflictError', async () => {
        const { connectionId } = await c().register(input());
        const p = name('ch');
        const channels = Array.from({ length: 100 }, (_, i) => `${p}-${String(i).padStart(3, '0')}`);
        const answers = await inBatches(channels.map((ch) => () => c().subscribe(connectionId, ch)));
        expect(answers.every((a) => a === true)).toBe(true);
        const extra = `${p}-extra`;
        await expectError(() => c().subscribe(connectionId, extra), ConflictError);
        expect((await c().subscribers(extra)).connectionIds).toEqual([]);
        // Re-subscribing to one it has is still fine; after an unsubscribe there is room again.
        expect(await c().subscribe(connectionId, channels[7]!)).toBe(true);
        expect(await c().unsubscribe(connectionId, channels[0]!)).toBe(true);
        expect(await c().subscribe(connectionId, extra)).toBe(true);
        const got = await c().get(connectionId);
        expect(got?.channels).toHaveLength(100);
        expect(got?.channels).toContain(extra);
        expect(got?.channels).not.toContain(channels[0]);
      });

      it('the limit holds when 150 subscribes of one connection run at once', async () => {
        const { connectionId } = await c().register(input());
        const p = name('ch');
        const channels = Array.from({ length: 150 }, (_, i) => `${p}-${i}`);
        const results = await Promise.allSettled(channels.map((ch) => c().subscribe(connectionId, ch)));
        const ok = results.filter((r) => r.status === 'fulfilled');
        const refused = results.filter((r) => r.status === 'rejected');
        expect(ok.map((r) => r.value)).toEqual(Array(100).fill(true));
        expect(refused).toHaveLength(50);
        for (const r of refused) expect(r.reason).toBeInstanceOf(ConflictError);
        expect((await c().get(connectionId))?.channels).toHaveLength(100);
      });

      it('many connections subscribing to one channel at once are all subscribers', async () => {
        const channel = name('ch');
        const ids = Array.from({ length: 60 }, () => name('conn'));
        await inBatches(ids.map((connectionId) => () => c().register(input({ connectionId }))));
        const answers = await Promise.all(ids.map((id) => c().subscribe(id, channel)));
        expect(answers.every((a) => a === true)).toBe(true);
        const page = await c().subscribers(channel, { limit: 1000 });
        expect(page).toEqual({ connectionIds: [...ids].sort(byBytes) });
      });
    });

    describe('subscribers', () => {
      it('pages 250 subscribers 100 at a time: no duplicates, no gaps, byte order, stable', async () => {
        const channel = name('ch');
        const ids = Array.from({ length: 250 }, (_, i) => `${name('conn')}-${i}`);
        await inBatches(
          ids.map((connectionId) => async () => {
            await c().register(input({ connectionId }));
            await c().subscribe(connectionId, channel);
          }),
        );
        // A connection on another channel is not listed.
        const other = await c().register(input());
        await c().subscribe(other.connectionId, name('ch'));

        const pages = await allPages(c(), channel, 100);
        expect(pages.map((p) => p.length)).toEqual([100, 100, 50]);
        const flat = pages.flat();
        expect(flat).toEqual([...ids].sort(byBytes));
        expect(new Set(flat).size).toBe(250);
        // The same walk again answers the same pages; the default limit is 100.
        expect(await allPages(c(), channel, 100)).toEqual(pages);
        expect(await allPages(c(), channel)).toEqual(pages);
        // One page of up to 1000 holds them all and has no cursor.
        expect(await c().subscribers(channel, { limit: 1000 })).toEqual({ connectionIds: flat });
      });

      it('the last page has no cursor, also when it is exactly full', async () => {
        const channel = name('ch');
        const ids = Array.from({ length: 4 }, (_, i) => `${name('conn')}-${i}`);
        for (const connectionId of ids) {
          await c().register(input({ connectionId }));
          await c().subscribe(connectionId, channel);
        }
        const sorted = [...ids].sort(byBytes);
        const first = await c().subscribers(channel, { limit: 2 });
        expect(first.connectionIds).toEqual(sorted.slice(0, 2));
        expect(typeof first.cursor).toBe('string');
        const second = await c().subscribers(channel, { limit: 2, cursor: first.cursor });
        expect(second).toEqual({ connectionIds: sorted.slice(2) });
        expect(await c().subscribers(name('empty'))).toEqual({ connectionIds: [] });
      });

      it('a walk meets later changes without gaps: a removed subscriber goes, the rest stay', async () => {
        const channel = name('ch');
        const ids = Array.from({ length: 30 }, (_, i) => `${name('conn')}-${String(i).padStart(2, '0')}`);
        for (const connectionId of ids) {
          await c().register(input({ connectionId }));
          await c().subscribe(connectionId, channel);
        }
        const sorted = [...ids].sort(byBytes);
        const first = await c().subscribers(channel, { limit: 10 });
        expect(first.connectionIds).toEqual(sorted.slice(0, 10));
        // Between pages: remove the last one of page 1 (the cursor's) and one of page 2.
        await c().remove(sorted[9]!);
        await c().unsubscribe(sorted[12]!, channel);
        const rest: string[] = [];
        let cursor = first.cursor;
        while (cursor !== undefined) {
          const page = await c().subscribers(channel, { limit: 10, cursor });
          rest.push(...page.connectionIds);
          cursor = page.cursor;
        }
        expect(rest).toEqual(sorted.slice(10).filter((id) => id !== sorted[12]));
      });
    });

    describe('remove', () => {
      it('remove forgets the connection and all its subscriptions', async () => {
        const { connectionId } = await c().register(input());
        const stay = await c().register(input());
        const channels = [name('ch'), name('ch'), name('ch')];
        for (const ch of channels) {
          await c().subscribe(connectionId, ch);
          await c().subscribe(stay.connectionId, ch);
        }
        expect(await c().remove(connectionId)).toBe(true);
        expect(await c().get(connectionId)).toBeUndefined();
        for (const ch of channels)
          expect((await c().subscribers(ch)).connectionIds).toEqual([stay.connectionId]);
        expect(await c().subscribe(connectionId, channels[0]!)).toBe(false);
        expect(await c().unsubscribe(connectionId, channels[1]!)).toBe(false);
        expect(await c().remove(connectionId)).toBe(false);
        expect(await c().remove(name('never'))).toBe(false);
        // Registering the id again starts with nothing.
        await c().register(input({ connectionId }));
        expect((await c().get(connectionId))?.channels).toEqual([]);
        expect((await c().get(stay.connectionId))?.channels).toEqual([...channels].sort(byBytes));
      });
    });

    describe('expiry', () => {
      it('an expired connection and its subscriptions are gone for every read at once', async () => {
        const channel = name('ch');
        const live = await c().register(input());
        await c().subscribe(live.connectionId, channel);
        const short = await c().register(input({ ttl: 1.5 }));
        expect(await c().subscribe(short.connectionId, channel)).toBe(true);
        await pastExpiry(short.expiresAt);

        expect(await c().get(short.connectionId)).toBeUndefined();
        expect(await c().subscribers(channel)).toEqual({ connectionIds: [live.connectionId] });
        expect(await c().subscribe(short.connectionId, name('ch'))).toBe(false);
        expect(await c().unsubscribe(short.connectionId, channel)).toBe(false);
        expect(await c().remove(short.connectionId)).toBe(false);
        expect((await c().get(live.connectionId))?.channels).toEqual([channel]);
      });

      it('subscribing does not extend a registration', async () => {
        const short = await c().register(input({ ttl: 1.5 }));
        const channel = name('ch');
        expect(await c().subscribe(short.connectionId, channel)).toBe(true);
        expect((await c().get(short.connectionId))?.expiresAt).toBe(short.expiresAt);
        await pastExpiry(short.expiresAt);
        expect(await c().get(short.connectionId)).toBeUndefined();
        expect((await c().subscribers(channel)).connectionIds).toEqual([]);
      });

      it('subscribe on an expired connection answers false; registering it again revives it empty', async () => {
        const short = await c().register(input({ ttl: 0.2 }));
        await pastExpiry(short.expiresAt);
        const channel = name('ch');
        expect(await c().subscribe(short.connectionId, channel)).toBe(false);
        expect((await c().subscribers(channel)).connectionIds).toEqual([]);
        const again = await c().register(input({ connectionId: short.connectionId }));
        expect(again.channels).toEqual([]);
        expect(await c().subscribe(short.connectionId, channel)).toBe(true);
        expect((await c().subscribers(channel)).connectionIds).toEqual([short.connectionId]);
      });

      it('sweep removes expired connections with their subscriptions and reports how many', async () => {
        const st = f.withConfig({});
        const channel = name('ch');
        const live = await st.connections.register(input());
        await st.connections.subscribe(live.connectionId, channel);
        const short = [];
        for (let i = 0; i < 3; i++) {
          const s = await st.connections.register(input({ ttl: 1.5 }));
          expect(await st.connections.subscribe(s.connectionId, channel)).toBe(true);
          short.push(s);
        }
        await pastExpiry(short.at(-1)!.expiresAt);

        const report = await st.sweep();
        expect(report.connections).toBe(3);
        expect((await st.sweep()).connections).toBe(0);
        expect(await st.connections.subscribers(channel)).toEqual({ connectionIds: [live.connectionId] });
        expect((await st.connections.get(live.connectionId))?.channels).toEqual([channel]);
        for (const s of short) expect(await st.connections.get(s.connectionId)).toBeUndefined();
      });
    });

    describe('validation', () => {
      it('register checks every field of its input and registers nothing', async () => {
        for (const [label, value] of BAD_NAMES) {
          await expectInvalid(() => c().register(input({ connectionId: bad(value) })), 'connectionId', label);
          const connectionId = name('conn');
          await expectInvalid(
            () => c().register(input({ connectionId, identity: bad(value) })),
            'identity',
            label,
          );
          expect(await c().get(connectionId)).toBeUndefined();
        }
        const connectionId = name('conn');
        const cases: [string, string, unknown][] = [
          ['scopes missing', 'scopes', { scopes: undefined }],
          ['scopes empty', 'scopes', { scopes: [] }],
          ['scopes not an array', 'scopes', { scopes: 'admin' }],
          ['an unknown scope', 'scopes', { scopes: ['events:subscribe', 'root'] }],
          ['resources missing', 'resources', { resources: undefined }],
          ['resources empty', 'resources', { resources: [] }],
          ['resources not an array', 'resources', { resources: '*' }],
          ['a bad resource pattern', 'resources', { resources: ['ok', 'a\nb'] }],
          [
            '101 resource patterns',
            'resources',
            { resources: Array.from({ length: 101 }, (_, i) => `r${i}`) },
          ],
          ['ttl 0', 'ttl', { ttl: 0 }],
          ['ttl negative', 'ttl', { ttl: -1 }],
          ['ttl NaN', 'ttl', { ttl: Number.NaN }],
          ['ttl Infinity', 'ttl', { ttl: Number.POSITIVE_INFINITY }],
          ['ttl a string', 'ttl', { ttl: '60' }],
          ['ttl over a day', 'ttl', { ttl: 86_401 }],
          ['an unknown key', 'tll', { tll: 60 }],
        ];
        for (const [label, field, overrides] of cases) {
          const i = { ...input({ connectionId }), ...(overrides as object) };
          for (const key of Object.keys(i) as (keyof typeof i)[]) if (i[key] === undefined) delete i[key];
          await expectInvalid(() => c().register(bad(i)), field, label);
        }
        await expectInvalid(() => c().register(bad(undefined)), 'input');
        await expectInvalid(() => c().register(bad('conn')), 'input');
        expect(await c().get(connectionId)).toBeUndefined();
        // The largest ttl is accepted.
        expect((await c().register(input({ connectionId, ttl: 86_400 }))).connectionId).toBe(connectionId);
      });

      it('get, subscribe, unsubscribe and remove check the connection id and channel', async () => {
        const { connectionId } = await c().register(input());
        const channel = name('ch');
        for (const [label, value] of BAD_NAMES) {
          await expectInvalid(() => c().get(bad(value)), 'connectionId', `get ${label}`);
          await expectInvalid(() => c().subscribe(bad(value), channel), 'connectionId', `subscribe ${label}`);
          await expectInvalid(() => c().subscribe(connectionId, bad(value)), 'channel', `subscribe ${label}`);
          await expectInvalid(
            () => c().unsubscribe(bad(value), channel),
            'connectionId',
            `unsubscribe ${label}`,
          );
          await expectInvalid(
            () => c().unsubscribe(connectionId, bad(value)),
            'channel',
            `unsubscribe ${label}`,
          );
          await expectInvalid(() => c().remove(bad(value)), 'connectionId', `remove ${label}`);
        }
        expect(await c().get(connectionId)).toMatchObject({ connectionId, channels: [] });
      });

      it('subscribers checks the channel, limit and cursor', async () => {
        const channel = name('ch');
        for (const [label, value] of BAD_NAMES)
          await expectInvalid(() => c().subscribers(bad(value)), 'channel', label);
        for (const limit of [0, 1001, 1.5, -1, '10', null, Number.NaN])
          await expectInvalid(() => c().subscribers(channel, { limit: bad(limit) }), 'limit', String(limit));
        const badCursors: unknown[] = [
          '',
          42,
          null,
          'not a cursor!',
          'a'.repeat(401),
          Buffer.from('a\nb').toString('base64url'), // decodes to a name with a control character
          Buffer.from([0xff, 0xfe]).toString('base64url'), // not UTF-8
          'YQ==', // padding: not what subscribers() writes
        ];
        for (const cursor of badCursors)
          await expectInvalid(
            () => c().subscribers(channel, { cursor: bad(cursor) }),
            'cursor',
            String(cursor),
          );
        await expectInvalid(() => c().subscribers(channel, bad({ cursr: 'x' })), 'cursr');
        await expectInvalid(() => c().subscribers(channel, bad('fast')), 'options');
        expect(await c().subscribers(channel, { limit: 1 })).toEqual({ connectionIds: [] });
        expect(await c().subscribers(channel, { limit: 1000 })).toEqual({ connectionIds: [] });
      });
    });
  });
}
