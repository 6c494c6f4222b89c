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
  'tokenExpiresAt',
  'tokenId',
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
    tokenId: name('tok'),
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
          tokenExpiresAt: '2031-05-06T07:08:09.123Z',
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
          tokenId: i.tokenId,
          tokenExpiresAt: '2031-05-06T07:08:09.123Z',
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

      it('a token that never expires is recorded as null, whether tokenExpiresAt is null or absent', async () => {
        const absent = await c().register(input());
        const explicit = await c().register(input({ tokenExpiresAt: null }));
        expect(absent.tokenExpiresAt).toBeNull();
        expect(explicit.tokenExpiresAt).toBeNull();
        expect((await c().get(absent.connectionId))?.tokenExpiresAt).toBeNull();
        expect((await c().get(explicit.connectionId))?.tokenExpiresAt).toBeNull();
        // Any offset is accepted and answered in UTC.
        const offset = await c().register(input({ tokenExpiresAt: '2031-05-06T09:08:09.5+02:00' }));
        expect(offset.tokenExpiresAt).toBe('2031-05-06T07:08:09.500Z');
        expect((await c().get(offset.connectionId))?.tokenExpiresAt).toBe('2031-05-06T07:08:09.500Z');
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
          input({
            connectionId,
            identity: 'second',
            scopes: ['admin'],
            resources: ['r'],
            tokenId: 'tok-second',
          }),
        );
        expect(replaced).toMatchObject({
          connectionId,
          identity: 'second',
          scopes: ['admin'],
          resources: ['r'],
          tokenId: 'tok-second',
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

    describe('tokens', () => {
      /** Every live connection of `tokenId`, page by page. */
      async function allOfToken(
        store: ConnectionStore,
        tokenId: string,
        limit?: number,
      ): Promise<string[][]> {
        const pages: string[][] = [];
        let cursor: string | undefined;
        do {
          const page = await store.byToken(tokenId, limit === undefined ? { cursor } : { cursor, limit });
          pages.push(page.connectionIds);
          cursor = page.cursor;
          if (pages.length > 1000) throw new Error('byToken() never ended');
        } while (cursor !== undefined);
        return pages;
      }

      it('byToken answers the live connections of one token in byte order, and pages them', async () => {
        const st = f.withConfig({ websocket: { maxConnectionsPerToken: 50 } });
        const tokenId = name('tok');
        const ids = Array.from({ length: 25 }, (_, i) => `${name('conn')}-${i}`);
        await inBatches(
          ids.map((connectionId) => () => st.connections.register(input({ connectionId, tokenId }))),
        );
        const other = await st.connections.register(input());
        const pages = await allOfToken(st.connections, tokenId, 10);
        expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
        expect(pages.flat()).toEqual([...ids].sort(byBytes));
        expect(await st.connections.byToken(tokenId, { limit: 1000 })).toEqual({
          connectionIds: [...ids].sort(byBytes),
        });
        expect(await st.connections.byToken(other.tokenId)).toEqual({ connectionIds: [other.connectionId] });
        expect(await st.connections.byToken(name('never'))).toEqual({ connectionIds: [] });
      });

      it('byToken leaves out removed, expired and re-registered connections', async () => {
        const tokenId = name('tok');
        const kept = await c().register(input({ tokenId }));
        const removed = await c().register(input({ tokenId }));
        const short = await c().register(input({ tokenId, ttl: 0.5 }));
        const moved = await c().register(input({ tokenId }));
        expect((await c().byToken(tokenId)).connectionIds).toEqual(
          [kept, removed, short, moved].map((x) => x.connectionId).sort(byBytes),
        );
        expect(await c().remove(removed.connectionId)).toBe(true);
        const otherToken = name('tok');
        await c().register(input({ connectionId: moved.connectionId, tokenId: otherToken }));
        await pastExpiry(short.expiresAt);
        expect(await c().byToken(tokenId)).toEqual({ connectionIds: [kept.connectionId] });
        expect(await c().byToken(otherToken)).toEqual({ connectionIds: [moved.connectionId] });
      });

      it('a token holds at most websocket.maxConnectionsPerToken live connections: one more is a ConflictError', async () => {
        const st = f.withConfig({ websocket: { maxConnectionsPerToken: 3 } });
        const tokenId = name('tok');
        const held = [];
        for (let i = 0; i < 3; i++) held.push(await st.connections.register(input({ tokenId })));
        const refused = name('conn');
        const error = await expectError(
          () => st.connections.register(input({ connectionId: refused, tokenId })),
          ConflictError,
        );
        expect(error.message).toMatch(/3 open WebSocket connections.*websocket\.maxConnectionsPerToken/);
        expect(await st.connections.get(refused)).toBeUndefined();
        expect((await st.connections.byToken(tokenId)).connectionIds).toHaveLength(3);
        // Another token is not held back; registering a held id again is not one more.
        expect((await st.connections.register(input())).connectionId).toBeDefined();
        const again = await st.connections.register(input({ connectionId: held[0]!.connectionId, tokenId }));
        expect(again.tokenId).toBe(tokenId);
        // A removed connection makes room.
        expect(await st.connections.remove(held[1]!.connectionId)).toBe(true);
        expect((await st.connections.register(input({ connectionId: refused, tokenId }))).connectionId).toBe(
          refused,
        );
        await expectError(() => st.connections.register(input({ tokenId })), ConflictError);
      });

      it('an expired connection does not count against its token', async () => {
        const st = f.withConfig({ websocket: { maxConnectionsPerToken: 2 } });
        const tokenId = name('tok');
        const short = await st.connections.register(input({ tokenId, ttl: 0.5 }));
        await st.connections.register(input({ tokenId }));
        await expectError(() => st.connections.register(input({ tokenId })), ConflictError);
        await pastExpiry(short.expiresAt);
        expect((await st.connections.register(input({ tokenId }))).tokenId).toBe(tokenId);
      });

      it('the limit holds when 30 connections of one token register at once (default 10)', async () => {
        const tokenId = name('tok');
        const ids = Array.from({ length: 30 }, () => name('conn'));
        const results = await Promise.allSettled(
          ids.map((connectionId) => c().register(input({ connectionId, tokenId }))),
        );
        const ok = results.filter((r) => r.status === 'fulfilled');
        const refused = results.filter((r) => r.status === 'rejected');
        expect(ok).toHaveLength(10);
        expect(refused).toHaveLength(20);
        for (const r of refused) expect(r.reason).toBeInstanceOf(ConflictError);
        const listed = (await c().byToken(tokenId)).connectionIds;
        expect(listed).toEqual(ok.map((r) => r.value.connectionId).sort(byBytes));
      });

      it('withExpiredToken answers live connections whose token expired, earliest first, up to limit', async () => {
        const st = f.withConfig({});
        const past = (seconds: number) => new Date(Date.now() - seconds * 1000).toISOString();
        const oldest = await st.connections.register(input({ tokenExpiresAt: past(30) }));
        const middle = await st.connections.register(input({ tokenExpiresAt: past(20) }));
        const newest = await st.connections.register(input({ tokenExpiresAt: past(10) }));
        const removed = await st.connections.register(input({ tokenExpiresAt: past(25) }));
        const soon = await st.connections.register(
          input({ tokenExpiresAt: new Date(Date.now() + 1500).toISOString() }),
        );
        await st.connections.register(
          input({ tokenExpiresAt: new Date(Date.now() + 600_000).toISOString() }),
        );
        await st.connections.register(input());
        const gone = await st.connections.register(input({ tokenExpiresAt: past(40), ttl: 0.3 }));
        expect(await st.connections.remove(removed.connectionId)).toBe(true);
        await pastExpiry(gone.expiresAt);

        const expired = [oldest, middle, newest].map((x) => x.connectionId);
        expect(await st.connections.withExpiredToken()).toEqual(expired);
        expect(await st.connections.withExpiredToken({ limit: 2 })).toEqual(expired.slice(0, 2));
        // Still registered: closing them is the caller's part.
        expect(await st.connections.get(oldest.connectionId)).toBeDefined();

        await pastExpiry(soon.tokenExpiresAt!);
        expect(await st.connections.withExpiredToken()).toEqual([...expired, soon.connectionId]);
        for (const id of expired) await st.connections.remove(id);
        expect(await st.connections.withExpiredToken()).toEqual([soon.connectionId]);
        // Registered again with a token that does not expire: no longer listed.
        await st.connections.register(input({ connectionId: soon.connectionId }));
        expect(await st.connections.withExpiredToken()).toEqual([]);
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
          await expectInvalid(
            () => c().register(input({ connectionId, tokenId: bad(value) })),
            'tokenId',
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
          ['tokenId missing', 'tokenId', { tokenId: undefined }],
          ['tokenExpiresAt not a time', 'tokenExpiresAt', { tokenExpiresAt: 'tomorrow' }],
          ['tokenExpiresAt without an offset', 'tokenExpiresAt', { tokenExpiresAt: '2031-01-01T00:00:00' }],
          ['tokenExpiresAt a date only', 'tokenExpiresAt', { tokenExpiresAt: '2031-01-01' }],
          ['tokenExpiresAt out of range', 'tokenExpiresAt', { tokenExpiresAt: '2031-13-01T00:00:00Z' }],
          ['tokenExpiresAt a number', 'tokenExpiresAt', { tokenExpiresAt: Date.now() }],
          ['tokenExpiresAt a Date', 'tokenExpiresAt', { tokenExpiresAt: new Date() }],
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

      it('byToken checks the token id, limit and cursor; withExpiredToken its limit', async () => {
        for (const [label, value] of BAD_NAMES)
          await expectInvalid(() => c().byToken(bad(value)), 'tokenId', label);
        const tokenId = name('tok');
        for (const limit of [0, 1001, 1.5, '10', null])
          await expectInvalid(() => c().byToken(tokenId, { limit: bad(limit) }), 'limit', String(limit));
        for (const cursor of ['', 'not a cursor!', 42])
          await expectInvalid(() => c().byToken(tokenId, { cursor: bad(cursor) }), 'cursor', String(cursor));
        await expectInvalid(() => c().byToken(tokenId, bad({ after: 'x' })), 'after');
        for (const limit of [0, 100_001, 2.5, '5', null])
          await expectInvalid(() => c().withExpiredToken({ limit: bad(limit) }), 'limit', String(limit));
        await expectInvalid(() => c().withExpiredToken(bad({ max: 1 })), 'max');
        expect(await c().withExpiredToken({ limit: 100_000 })).toEqual(expect.any(Array));
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
