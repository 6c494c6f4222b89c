import { describe, expect, it } from 'vitest';
import type { Session } from '../../lib/storage/types.js';
import type { Fixture } from '../support/fixture.js';
import { isoMs, name, sleep } from '../support/helpers.js';

const ids = (sessions: Session[]) => sessions.map((s) => s.sessionId);

export function describeSessions(f: Fixture): void {
  const sessions = () => f.storage().sessions;

  describe('sessions', () => {
    it('create fills defaults: optionals null, data {}, expiresAt = createdAt + 300 s', async () => {
      const clusterId = name('c');
      const before = Date.now();
      const s = await sessions().create({ clusterId });
      expect(typeof s.sessionId).toBe('string');
      expect(s.sessionId.length).toBeGreaterThan(0);
      expect(s).toMatchObject({
        clusterId,
        userId: null,
        correlationId: null,
        serviceIdentity: null,
        data: {},
      });
      const created = isoMs(s.createdAt);
      expect(created).toBeGreaterThanOrEqual(before - 1000);
      expect(isoMs(s.lastActivity)).toBeGreaterThanOrEqual(created);
      const lifetime = isoMs(s.expiresAt) - created;
      expect(lifetime).toBeGreaterThanOrEqual(299_000);
      expect(lifetime).toBeLessThanOrEqual(301_000);
    });

    it('create keeps every field given, and get answers the same session', async () => {
      const input = {
        clusterId: name('c'),
        userId: name('u'),
        correlationId: name('corr'),
        serviceIdentity: name('svc'),
        data: { k: [1, 'two', null], nested: { ok: true }, emoji: '👋' },
        ttl: 60,
      };
      const s = await sessions().create(input);
      expect(s).toMatchObject({
        clusterId: input.clusterId,
        userId: input.userId,
        correlationId: input.correlationId,
        serviceIdentity: input.serviceIdentity,
        data: input.data,
      });
      const lifetime = isoMs(s.expiresAt) - isoMs(s.createdAt);
      expect(lifetime).toBeGreaterThanOrEqual(59_000);
      expect(lifetime).toBeLessThanOrEqual(61_000);
      expect(await sessions().get(s.sessionId)).toEqual(s);
    });

    it('every session gets its own id', async () => {
      const clusterId = name('c');
      const made = await Promise.all(Array.from({ length: 20 }, () => sessions().create({ clusterId })));
      expect(new Set(ids(made)).size).toBe(20);
    });

    it('get answers undefined for an unknown id', async () => {
      expect(await sessions().get(name('nope'))).toBeUndefined();
    });

    it('a session expires after its ttl: get undefined, cluster inactive', async () => {
      const clusterId = name('c');
      const s = await sessions().create({ clusterId, ttl: 0.3 });
      await sleep(600);
      expect(await sessions().get(s.sessionId)).toBeUndefined();
      expect(await sessions().isClusterActive(clusterId)).toBe(false);
      expect(await sessions().byCluster(clusterId)).toEqual([]);
      expect(await sessions().keepAlive(s.sessionId)).toBeUndefined();
      expect(await sessions().end(s.sessionId)).toBe(false);
    });

    describe('keepAlive', () => {
      it('extends expiresAt and lastActivity and keeps the cluster active past the original expiry', async () => {
        const clusterId = name('c');
        const s = await sessions().create({ clusterId, ttl: 1 });
        await sleep(50);
        const kept = await sessions().keepAlive(s.sessionId, 5);
        expect(kept?.sessionId).toBe(s.sessionId);
        expect(isoMs(kept?.lastActivity)).toBeGreaterThan(isoMs(s.lastActivity));
        expect(isoMs(kept?.expiresAt)).toBeGreaterThan(isoMs(s.expiresAt));
        expect(isoMs(kept?.expiresAt) - isoMs(kept?.lastActivity)).toBeGreaterThanOrEqual(4_000);
        expect(isoMs(kept?.expiresAt) - isoMs(kept?.lastActivity)).toBeLessThanOrEqual(6_000);
        expect(kept?.createdAt).toBe(s.createdAt);
        await sleep(1300); // past the original expiry
        expect((await sessions().get(s.sessionId))?.expiresAt).toBe(kept?.expiresAt);
        expect(await sessions().isClusterActive(clusterId)).toBe(true);
        expect(ids(await sessions().byCluster(clusterId))).toEqual([s.sessionId]);
      });

      it('without ttl, extends by the ttl the session was created with', async () => {
        const s = await sessions().create({ clusterId: name('c'), ttl: 42 });
        await sleep(20);
        const kept = await sessions().keepAlive(s.sessionId);
        const lifetime = isoMs(kept?.expiresAt) - isoMs(kept?.lastActivity);
        expect(lifetime).toBeGreaterThanOrEqual(41_000);
        expect(lifetime).toBeLessThanOrEqual(43_000);
        expect(kept?.data).toEqual(s.data);
      });

      it('answers undefined for a missing or ended session', async () => {
        expect(await sessions().keepAlive(name('nope'))).toBeUndefined();
        const s = await sessions().create({ clusterId: name('c') });
        await sessions().end(s.sessionId);
        expect(await sessions().keepAlive(s.sessionId)).toBeUndefined();
        expect(await sessions().get(s.sessionId)).toBeUndefined();
      });
    });

    describe('end', () => {
      it('ends at once; the cluster stays active while another live session remains', async () => {
        const clusterId = name('c');
        const a = await sessions().create({ clusterId });
        const b = await sessions().create({ clusterId });
        expect(await sessions().end(a.sessionId)).toBe(true);
        expect(await sessions().get(a.sessionId)).toBeUndefined();
        expect(await sessions().isClusterActive(clusterId)).toBe(true);
        expect(ids(await sessions().byCluster(clusterId))).toEqual([b.sessionId]);
        expect(await sessions().end(b.sessionId)).toBe(true);
        expect(await sessions().isClusterActive(clusterId)).toBe(false);
        expect(await sessions().activeClusters()).not.toContain(clusterId);
      });

      it('answers false for an unknown or already ended session', async () => {
        expect(await sessions().end(name('nope'))).toBe(false);
        const s = await sessions().create({ clusterId: name('c') });
        expect(await sessions().end(s.sessionId)).toBe(true);
        expect(await sessions().end(s.sessionId)).toBe(false);
      });
    });

    describe('queries', () => {
      it('byCluster answers live sessions only, oldest first', async () => {
        const clusterId = name('c');
        const first = await sessions().create({ clusterId });
        await sleep(5);
        const ended = await sessions().create({ clusterId });
        await sleep(5);
        const expiring = await sessions().create({ clusterId, ttl: 0.3 });
        await sleep(5);
        const last = await sessions().create({ clusterId });
        const elsewhere = await sessions().create({ clusterId: name('c') });
        await sessions().end(ended.sessionId);
        expect(ids(await sessions().byCluster(clusterId))).toEqual([
          first.sessionId,
          expiring.sessionId,
          last.sessionId,
        ]);
        await sleep(600);
        const live = await sessions().byCluster(clusterId);
        expect(ids(live)).toEqual([first.sessionId, last.sessionId]);
        expect(live[0]).toEqual(first);
        expect(ids(live)).not.toContain(elsewhere.sessionId);
      });

      it('byCorrelation answers live sessions sharing the id across clusters, oldest first', async () => {
        const correlationId = name('corr');
        const a = await sessions().create({ clusterId: name('c'), correlationId });
        await sleep(5);
        const expiring = await sessions().create({ clusterId: name('c'), correlationId, ttl: 0.3 });
        await sleep(5);
        const b = await sessions().create({ clusterId: name('c'), correlationId });
        await sleep(5);
        const ended = await sessions().create({ clusterId: name('c'), correlationId });
        await sessions().create({ clusterId: name('c'), correlationId: name('other') });
        await sessions().end(ended.sessionId);
        expect(ids(await sessions().byCorrelation(correlationId))).toEqual([
          a.sessionId,
          expiring.sessionId,
          b.sessionId,
        ]);
        await sleep(600);
        expect(ids(await sessions().byCorrelation(correlationId))).toEqual([a.sessionId, b.sessionId]);
        expect(await sessions().byCorrelation(name('nobody'))).toEqual([]);
      });

      it('activeClusters answers clusters with a live session, sorted, without expired or ended ones', async () => {
        const stem = name('ac');
        const [a, b, ended, expired] = [`${stem}-a`, `${stem}-b`, `${stem}-e`, `${stem}-x`];
        await sessions().create({ clusterId: b });
        await sessions().create({ clusterId: a });
        await sessions().create({ clusterId: a });
        const e = await sessions().create({ clusterId: ended });
        await sessions().end(e.sessionId);
        await sessions().create({ clusterId: expired, ttl: 0.3 });
        await sleep(600);
        const active = await sessions().activeClusters();
        const mine = active.filter((c) => c.startsWith(stem));
        expect(mine).toEqual([a, b]); // each once, sorted
      });

      it('isClusterActive: true with a live session, false without, false after expiry', async () => {
        const clusterId = name('c');
        expect(await sessions().isClusterActive(clusterId)).toBe(false);
        await sessions().create({ clusterId, ttl: 0.3 });
        expect(await sessions().isClusterActive(clusterId)).toBe(true);
        expect(await sessions().activeClusters()).toContain(clusterId);
        await sleep(600);
        expect(await sessions().isClusterActive(clusterId)).toBe(false);
        expect(await sessions().activeClusters()).not.toContain(clusterId);
      });

      it('cluster ids that look like key syntax (braces, colons, globs) are isolated', async () => {
        const base = name('c');
        const clusters = [base, `${base}}`, `{${base}}`, `${base}:*`, `${base}*`, `${base} `];
        const made: Session[] = [];
        for (const clusterId of clusters) made.push(await sessions().create({ clusterId }));
        for (const [i, clusterId] of clusters.entries()) {
          expect(ids(await sessions().byCluster(clusterId)), clusterId).toEqual([made[i]!.sessionId]);
        }
        await sessions().end(made[0]!.sessionId);
        expect(await sessions().isClusterActive(base)).toBe(false);
        for (const clusterId of clusters.slice(1))
          expect(await sessions().isClusterActive(clusterId)).toBe(true);
      });

      it('keepAlive of one session keeps its cluster active while a sibling expires', async () => {
        const clusterId = name('c');
        const kept = await sessions().create({ clusterId, ttl: 0.4 });
        await sessions().create({ clusterId, ttl: 0.4 });
        await sessions().keepAlive(kept.sessionId, 30);
        await sleep(700);
        expect(await sessions().isClusterActive(clusterId)).toBe(true);
        expect(ids(await sessions().byCluster(clusterId))).toEqual([kept.sessionId]);
      });
    });
  });
}
