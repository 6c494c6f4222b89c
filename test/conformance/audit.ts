import { describe, expect, it } from 'vitest';
import type { AuditEntry, AuditInput, AuditStore } from '../../lib/storage/types.js';
import type { Fixture } from '../support/fixture.js';
import { isoMs, name, sleep } from '../support/helpers.js';

/** Appends one entry per action, each in a later millisecond than the one before. */
async function appendSpaced(audit: AuditStore, identity: string, actions: string[]): Promise<AuditEntry[]> {
  const entries: AuditEntry[] = [];
  for (const action of actions) {
    entries.push(await audit.append({ identity, action }));
    await sleep(15);
  }
  return entries;
}

const actions = (entries: AuditEntry[]) => entries.map((e) => e.action);

export function describeAudit(f: Fixture): void {
  const audit = () => f.storage().audit;

  describe('audit', () => {
    it('append answers the entry with id and at, optionals null', async () => {
      const identity = name('who');
      const before = Date.now();
      const entry = await audit().append({ identity, action: 'kv.set' });
      expect(typeof entry.id).toBe('string');
      expect(isoMs(entry.at)).toBeGreaterThanOrEqual(before - 1000);
      expect(entry).toMatchObject({
        identity,
        action: 'kv.set',
        resource: null,
        correlationId: null,
        details: null,
      });
      // AuditInput.outcome is optional and AuditEntry.outcome is not: the entry answers one of the three.
      expect(['ok', 'denied', 'error']).toContain(entry.outcome);
    });

    it('append keeps every field and query answers it unchanged', async () => {
      const input: AuditInput = {
        identity: name('who'),
        action: 'tokens.revoke',
        resource: 'cluster/a b/{c}',
        correlationId: name('corr'),
        outcome: 'denied',
        details: { reason: 'missing scope', scopes: ['admin'], nested: { n: 1, ok: false } },
      };
      const entry = await audit().append(input);
      expect(entry).toMatchObject(input);
      expect(await audit().query({ identity: input.identity })).toEqual([entry]);
    });

    it('entries get distinct ids', async () => {
      const identity = name('who');
      const entries = await Promise.all(
        Array.from({ length: 20 }, () => audit().append({ identity, action: 'x' })),
      );
      expect(new Set(entries.map((e) => e.id)).size).toBe(20);
      expect(await audit().query({ identity, limit: 1000 })).toHaveLength(20);
    });

    it('query orders by append order across ids of different lengths (9 → 10, 99 → 100)', async () => {
      // A fresh storage: its ids start low, so 120 appends cross two digit boundaries.
      const fresh = f.withConfig({}).audit;
      const identity = name('many');
      for (let i = 0; i < 120; i++) await fresh.append({ identity, action: `a${i}` });
      const expected = Array.from({ length: 120 }, (_, i) => `a${i}`);
      expect(actions(await fresh.query({ identity, order: 'asc', limit: 1000 }))).toEqual(expected);
      expect(actions(await fresh.query({ identity, limit: 1000 }))).toEqual([...expected].reverse());
      expect(actions(await fresh.query({ identity, limit: 3 }))).toEqual(['a119', 'a118', 'a117']);
    });

    it('query by identity answers only that identity, newest first by default', async () => {
      const identity = name('who');
      await appendSpaced(audit(), identity, ['a', 'b', 'c']);
      await audit().append({ identity: name('someone-else'), action: 'z' });
      const entries = await audit().query({ identity });
      expect(actions(entries)).toEqual(['c', 'b', 'a']);
      expect(entries.every((e) => e.identity === identity)).toBe(true);
      expect(await audit().query({ identity: name('nobody') })).toEqual([]);
    });

    it('order asc answers oldest first; limit caps the answer from that end', async () => {
      const identity = name('who');
      await appendSpaced(audit(), identity, ['a', 'b', 'c', 'd']);
      expect(actions(await audit().query({ identity, order: 'asc' }))).toEqual(['a', 'b', 'c', 'd']);
      expect(actions(await audit().query({ identity, order: 'desc' }))).toEqual(['d', 'c', 'b', 'a']);
      expect(actions(await audit().query({ identity, order: 'asc', limit: 2 }))).toEqual(['a', 'b']);
      expect(actions(await audit().query({ identity, limit: 2 }))).toEqual(['d', 'c']);
    });

    it('since is inclusive, until is exclusive', async () => {
      const identity = name('who');
      const [a, b, c] = await appendSpaced(audit(), identity, ['a', 'b', 'c']);
      const atB = new Date(isoMs(b!.at));
      expect(actions(await audit().query({ identity, since: atB, order: 'asc' }))).toEqual(['b', 'c']);
      expect(actions(await audit().query({ identity, until: atB, order: 'asc' }))).toEqual(['a']);
      expect(
        actions(
          await audit().query({
            identity,
            since: new Date(isoMs(a!.at)),
            until: new Date(isoMs(c!.at)),
            order: 'asc',
          }),
        ),
      ).toEqual(['a', 'b']);
      expect(await audit().query({ identity, since: new Date(Date.now() + 60_000) })).toEqual([]);
      // Bounds at the edges of the Date range are answers, not backend errors.
      expect(await audit().query({ identity, until: new Date(0) })).toEqual([]);
      expect(await audit().query({ identity, until: new Date(-1000) })).toEqual([]);
      expect(await audit().query({ identity, since: new Date('6000-01-01') })).toEqual([]);
      expect(await audit().query({ identity, since: new Date(8.64e15) })).toEqual([]);
      expect(await audit().query({ identity, since: new Date(-8.64e15), order: 'asc' })).toHaveLength(3);
    });

    it('query without filters answers entries of every identity, newest first', async () => {
      const one = await audit().append({ identity: name('who'), action: 'first' });
      await sleep(15);
      const two = await audit().append({ identity: name('who'), action: 'second' });
      const entries = await audit().query({ since: new Date(isoMs(one.at)), limit: 1000 });
      const ids = entries.map((e) => e.id);
      expect(ids).toContain(one.id);
      expect(ids).toContain(two.id);
      expect(ids.indexOf(two.id)).toBeLessThan(ids.indexOf(one.id));
    });

    it('retention by audit.maxEntries: older entries are not answered', async () => {
      const store = f.withConfig({ audit: { maxEntries: 3 } }).audit;
      const identity = name('who');
      const entries = await appendSpaced(store, identity, ['1', '2', '3', '4', '5']);
      const answered = await store.query({ identity, order: 'asc' });
      expect(answered.map((e) => e.id)).toEqual(entries.slice(2).map((e) => e.id));
      expect(await store.query({ order: 'asc', limit: 1000 })).toHaveLength(3);
    });

    it('retention by audit.maxAge: entries older than it are not answered', async () => {
      const store = f.withConfig({ audit: { maxAge: 0.5 } }).audit;
      const identity = name('who');
      await store.append({ identity, action: 'old' });
      await sleep(800);
      const fresh = await store.append({ identity, action: 'new' });
      expect(await store.query({ identity })).toEqual([fresh]);
    });
  });
}
