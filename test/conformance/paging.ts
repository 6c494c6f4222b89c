import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../lib/errors.js';
import type { PageOptions, Storage, TokenInfo } from '../../lib/storage/types.js';
import type { Fixture } from '../support/fixture.js';
import { failure, name, sleep } from '../support/helpers.js';

type Walk<T> = (options: PageOptions) => Promise<{ items: T[]; cursor?: string }>;

/** Every page of a walk with `options`, calling `between` after each page. */
async function walk<T>(
  page: Walk<T>,
  options: Omit<PageOptions, 'cursor'>,
  between: (pageIndex: number) => Promise<void> = async () => {},
): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | undefined;
  do {
    const answer = await page({ ...options, ...(cursor === undefined ? {} : { cursor }) });
    pages.push(answer.items);
    cursor = answer.cursor;
    expect(pages.length, 'a walk ends').toBeLessThan(1000);
    await between(pages.length - 1);
  } while (cursor !== undefined);
  return pages;
}

const tokenPages =
  (s: Storage): Walk<TokenInfo> =>
  async (options) => {
    const { tokens, cursor } = await s.tokens.page(options);
    return { items: tokens, ...(cursor === undefined ? {} : { cursor }) };
  };
const clusterPages =
  (s: Storage): Walk<string> =>
  async (options) => {
    const { clusters, cursor } = await s.sessions.activeClusterPage(options);
    return { items: clusters, ...(cursor === undefined ? {} : { cursor }) };
  };

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
/** List order: creation time, then id bytes (tokens issued in one millisecond sort by id). */
const oldestFirst = (a: TokenInfo, b: TokenInfo) =>
  a.createdAt.localeCompare(b.createdAt) || byBytes(a.id, b.id);

export function describePaging(f: Fixture): void {
  describe('paging', () => {
    it('tokens.page walks every live token once, oldest first, limit at a time', async () => {
      const s = f.withConfig({});
      const issued: TokenInfo[] = [];
      for (let i = 0; i < 7; i++) {
        const { token: _secret, ...info } = await s.tokens.issue({
          identity: name('p'),
          scopes: ['kv:read'],
        });
        issued.push(info);
      }
      issued.sort(oldestFirst);
      const pages = await walk(tokenPages(s), { limit: 3 });
      expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
      expect(pages.flat()).toEqual(issued);
      expect(pages.flat()).toEqual(await s.tokens.list());
      // Without a limit: 100; a page that holds everything has no cursor.
      expect(await s.tokens.page()).toEqual({ tokens: issued });
      expect((await s.tokens.page({ limit: 7 })).cursor).toBeUndefined();
      expect((await s.tokens.page({ limit: 6 })).cursor).toBeDefined();
    });

    it('a token walk never repeats or skips a token that stays, while others are issued and revoked', async () => {
      const s = f.withConfig({});
      const stayed: string[] = [];
      const early: TokenInfo[] = [];
      for (let i = 0; i < 9; i++) {
        const t = await s.tokens.issue({ identity: name('p'), scopes: ['kv:read'] });
        early.push(t);
      }
      // Tokens issued in one millisecond list by id: the walk's order, not the issue order.
      const order = [...early].sort(oldestFirst);
      const revoked = new Set<string>();
      const late: string[] = [];
      const pages = await walk(tokenPages(s), { limit: 2 }, async (index) => {
        if (index === 0) {
          // One already answered, one not yet reached.
          for (const t of [order[0]!, order[6]!]) {
            await s.tokens.revoke(t.id);
            revoked.add(t.id);
          }
          await sleep(5);
          late.push((await s.tokens.issue({ identity: name('late'), scopes: ['kv:read'] })).id);
        }
      });
      for (const t of early) if (!revoked.has(t.id)) stayed.push(t.id);
      const seen = pages.flat().map((t) => t.id);
      expect(new Set(seen).size).toBe(seen.length);
      for (const id of stayed) expect(seen).toContain(id);
      expect(seen).not.toContain(order[6]!.id);
      // Issued during the walk, after every earlier token: it comes at the end.
      expect(seen.at(-1)).toBe(late[0]);
    });

    it('tokens.page within globs answers only tokens whose every resource lies inside them', async () => {
      const s = f.storage();
      const stem = name('pg');
      const issue = async (resources: string[]) =>
        (await s.tokens.issue({ identity: name('w'), scopes: ['kv:read'], resources })).id;
      const inside = [await issue([`${stem}/a/*`]), await issue([`${stem}/a/x`, `${stem}/a/y*`])];
      const listed = await s.tokens.list();
      inside.sort((a, b) => listed.findIndex((t) => t.id === a) - listed.findIndex((t) => t.id === b));
      await issue([`${stem}/b`]);
      await issue([`${stem}/a/x`, 'elsewhere']);
      await issue(['*']);
      const pages = await walk(tokenPages(s), { limit: 1, within: [`${stem}/a/*`] });
      expect(pages.flat().map((t) => t.id)).toEqual(inside);
      // Two globs: a token's resources may lie in different ones.
      const both = await walk(tokenPages(s), { within: [`${stem}/a/*`, `${stem}/b`] });
      expect(both.flat()).toHaveLength(3);
      // `*` among the globs: everything.
      const all = await s.tokens.page({ limit: 1000, within: ['*', `${stem}/b`] });
      expect(all.tokens.map((t) => t.id)).toEqual(expect.arrayContaining(inside));
    });

    it('%, _ and \\ in globs and resources are characters, not wildcards', async () => {
      const s = f.storage();
      const stem = name('lk');
      const issue = async (resource: string) =>
        (await s.tokens.issue({ identity: name('w'), scopes: ['kv:read'], resources: [resource] })).id;
      const percent = await issue(`${stem}%x`);
      await issue(`${stem}ax`);
      const underscore = await issue(`${stem}_y`);
      await issue(`${stem}zy`);
      const backslash = await issue(`${stem}\\q`);
      const ids = async (within: string[]) => (await walk(tokenPages(s), { within })).flat().map((t) => t.id);
      expect(await ids([`${stem}%*`])).toEqual([percent]);
      expect(await ids([`${stem}_y`])).toEqual([underscore]);
      expect(await ids([`${stem}\\*`])).toEqual([backslash]);

      const c = `${stem}-c`;
      await s.sessions.create({ clusterId: `${c}%1` });
      await s.sessions.create({ clusterId: `${c}x1` });
      await s.sessions.create({ clusterId: `${c}_2` });
      await s.sessions.create({ clusterId: `${c}z2` });
      const clusters = async (within: string[]) => (await walk(clusterPages(s), { within })).flat();
      expect(await clusters([`${c}%*`])).toEqual([`${c}%1`]);
      expect(await clusters([`${c}_2`])).toEqual([`${c}_2`]);
    });

    it('activeClusterPage walks clusters with a live session once each, in UTF-8 byte order', async () => {
      const s = f.withConfig({});
      const stem = name('ac');
      // By UTF-16 units the emoji (D83D) sorts before U+FB00; by UTF-8 bytes (F0 > EF) after.
      const clusters = [`${stem}-b`, `${stem}-a`, `${stem}-\u{1F600}`, `${stem}-\uFB00`, `${stem}-é`];
      for (const clusterId of clusters) {
        await s.sessions.create({ clusterId });
        await s.sessions.create({ clusterId });
      }
      await s.sessions.create({ clusterId: `${stem}-expired`, ttl: 0.2 });
      const ended = await s.sessions.create({ clusterId: `${stem}-ended` });
      await s.sessions.end(ended.sessionId);
      await sleep(400);
      const pages = await walk(clusterPages(s), { limit: 2 });
      expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
      expect(pages.flat()).toEqual([...clusters].sort(byBytes));
      expect(await s.sessions.activeClusters()).toEqual([...clusters].sort(byBytes));
      expect(await s.sessions.activeClusterPage()).toEqual({ clusters: [...clusters].sort(byBytes) });
    });

    it('a cluster walk never repeats or skips a cluster that stays active, while others come and go', async () => {
      const s = f.withConfig({});
      const stem = name('cw');
      const ids = Array.from({ length: 8 }, (_, i) => `${stem}-${i}`);
      const sessionOf = new Map<string, string>();
      for (const clusterId of ids)
        sessionOf.set(clusterId, (await s.sessions.create({ clusterId })).sessionId);
      const pages = await walk(clusterPages(s), { limit: 3 }, async (index) => {
        if (index !== 0) return;
        await s.sessions.end(sessionOf.get(ids[1]!)!); // already answered
        await s.sessions.end(sessionOf.get(ids[5]!)!); // not yet reached
        await s.sessions.create({ clusterId: `${stem}-0a` }); // before the cursor: not in this walk
        await s.sessions.create({ clusterId: `${stem}-9` }); // after it: in this walk
      });
      const seen = pages.flat();
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toEqual([ids[0], ids[1], ids[2], ids[3], ids[4], ids[6], ids[7], `${stem}-9`]);
    });

    it('activeClusterPage within globs answers only matching clusters', async () => {
      const s = f.storage();
      const stem = name('cg');
      for (const suffix of ['a-1', 'a-2', 'b-1', 'a'])
        await s.sessions.create({ clusterId: `${stem}-${suffix}` });
      const pages = await walk(clusterPages(s), { limit: 1, within: [`${stem}-a-*`] });
      expect(pages.flat()).toEqual([`${stem}-a-1`, `${stem}-a-2`]);
      const exact = await walk(clusterPages(s), { within: [`${stem}-b-1`, `${stem}-a`] });
      expect(exact.flat()).toEqual([`${stem}-a`, `${stem}-b-1`]);
    });

    it('bad limit, cursor or within is a ValidationError saying which', async () => {
      const s = f.storage();
      const listings = [
        (o: unknown) => s.tokens.page(o as PageOptions),
        (o: unknown) => s.sessions.activeClusterPage(o as PageOptions),
      ];
      for (const page of listings) {
        for (const limit of [0, 1001, 1.5, '10', -1, null]) {
          const error = await failure(() => page({ limit }));
          expect(error, String(limit)).toBeInstanceOf(ValidationError);
          expect((error as Error).message).toMatch(/^options\.limit: /);
        }
        for (const cursor of ['', '!!!', 'not a cursor', 'AAAA=', 42, 'x'.repeat(800)]) {
          const error = await failure(() => page({ cursor }));
          expect(error, String(cursor)).toBeInstanceOf(ValidationError);
          expect((error as Error).message).toMatch(/^options\.cursor: /);
        }
        for (const within of [[], 'x', [''], [1]]) {
          expect(await failure(() => page({ within }))).toBeInstanceOf(ValidationError);
        }
        expect(await failure(() => page({ offset: 3 }))).toBeInstanceOf(ValidationError);
      }
      // A cursor of one listing is not a cursor of the other.
      await s.sessions.create({ clusterId: name('cc') });
      await s.sessions.create({ clusterId: name('cc') });
      const clusterCursor = (await s.sessions.activeClusterPage({ limit: 1 })).cursor!;
      const error = await failure(() => s.tokens.page({ cursor: clusterCursor }));
      expect((error as Error).message).toBe('options.cursor: is not a cursor answered by tokens.page()');
    });
  });
}
