import { describe, expect, it } from 'vitest';
import type { Fixture } from '../support/fixture.js';
import { name, sleep } from '../support/helpers.js';

export function describeStorage(f: Fixture): void {
  const s = () => f.storage();

  describe('storage', () => {
    it('backend names the configured backend', () => {
      expect(s().backend).toBe(f.backend.kind);
    });

    it("health() answers status 'ok' with a passing check for the backend", async () => {
      const report = await s().health();
      expect(report.status).toBe('ok');
      expect(report.backend).toBe(f.backend.kind);
      const checks = Object.entries(report.checks);
      expect(checks.length).toBeGreaterThanOrEqual(1);
      for (const [check, result] of checks) {
        expect(result.ok, check).toBe(true);
        expect(result.latencyMs, check).toBeGreaterThanOrEqual(0);
        expect(Number.isFinite(result.latencyMs), check).toBe(true);
        expect(result.error, check).toBeUndefined();
      }
    });

    it(`pools() reports each connection pool in use [pools: ${f.caps.pools.join(', ') || 'none'}]`, async () => {
      const st = s();
      await st.kv.set(name('k'), 1);
      await st.sessions.activeClusters();
      await st.queues.stats(name('q'));
      const pools = st.pools();
      expect(Object.keys(pools).sort()).toEqual([...f.caps.pools].sort());
      for (const [backend, use] of Object.entries(pools)) {
        for (const count of [use.inUse, use.idle, use.waiting]) {
          expect(Number.isInteger(count) && count >= 0, backend).toBe(true);
        }
        if (use.max !== null) {
          expect(Number.isInteger(use.max) && use.max >= 0, backend).toBe(true);
          expect(use.inUse, backend).toBeLessThanOrEqual(use.max);
        }
      }
    });

    // Redis only: a PostgreSQL long poll waits on LISTEN (or polls), not on a pooled connection.
    if (f.backend.kind === 'redis')
      it('pools(): a long poll holds a Redis connection while it waits', async () => {
        const st = s();
        const queue = name('q');
        const before = st.pools().redis!.inUse;
        const waiting = st.queues.receive(queue, { wait: 2 });
        await expect.poll(() => st.pools().redis!.inUse, { timeout: 1500 }).toBe(before + 1);
        await st.queues.send(queue, 'wake');
        expect(await waiting).toHaveLength(1);
        await expect.poll(() => st.pools().redis!.inUse, { timeout: 1500 }).toBe(before);
        expect(st.pools().redis!.idle).toBeGreaterThanOrEqual(1);
      });

    it('sweep() answers numeric counts and removes no live data', async () => {
      const st = s();
      const liveKey = name('k');
      const ttlKey = name('k');
      const goneKey = name('k');
      await st.kv.set(liveKey, 'forever');
      await st.kv.set(ttlKey, 'later', { ttl: 600 });
      await st.kv.set(goneKey, 'soon', { ttl: 0.1 });
      const session = await st.sessions.create({ clusterId: name('c') });
      const short = await st.sessions.create({ clusterId: name('c'), ttl: 0.1 });
      const queue = name('q');
      await st.queues.send(queue, 'waiting');
      await st.queues.send(queue, 'leased');
      const channel = name('ch');
      await st.events.publish(channel, 'kept');
      const token = await st.tokens.issue({ identity: name('who'), scopes: ['kv:read'] });
      const expiringToken = await st.tokens.issue({ identity: name('who'), scopes: ['kv:read'], ttl: 0.1 });
      const identity = name('who');
      const entry = await st.audit.append({ identity, action: 'sweep.test' });
      const [leased] = await st.queues.receive(queue, { visibilityTimeout: 600 });
      const connection = await st.connections.register({
        connectionId: name('conn'),
        identity: name('who'),
        tokenId: token.id,
        scopes: ['events:subscribe'],
        resources: ['*'],
      });
      await st.connections.subscribe(connection.connectionId, channel);
      await sleep(300);

      const report = await st.sweep();
      const fields = [
        'kv',
        'sessions',
        'queues',
        'events',
        'tokens',
        'audit',
        'connections',
        'durationMs',
      ] as const;
      expect(Object.keys(report).sort()).toEqual([...fields].sort());
      for (const field of fields) {
        expect(typeof report[field], field).toBe('number');
        expect(report[field], field).toBeGreaterThanOrEqual(0);
      }
      expect(await st.sweep({ batchSize: 1 })).toMatchObject({ kv: expect.any(Number) });

      expect(await st.kv.get(liveKey)).toBe('forever');
      expect(await st.kv.get(ttlKey)).toBe('later');
      expect(await st.kv.get(goneKey)).toBeUndefined();
      expect(await st.sessions.get(session.sessionId)).toEqual(session);
      expect(await st.sessions.get(short.sessionId)).toBeUndefined();
      expect(await st.queues.stats(queue)).toEqual({ depth: 1, delayed: 0, inFlight: 1, dead: 0 });
      await st.queues.ack(queue, leased!.id, leased!.receipt);
      expect((await st.events.history(channel)).map((e) => e.message)).toEqual(['kept']);
      expect((await st.tokens.verify(token.token))?.id).toBe(token.id);
      expect(await st.tokens.verify(expiringToken.token)).toBeUndefined();
      expect(await st.audit.query({ identity })).toEqual([entry]);
      expect(await st.connections.get(connection.connectionId)).toEqual({
        ...connection,
        channels: [channel],
      });
    });

    it('close() resolves on a storage that was never used', async () => {
      const fresh = f.backend.create();
      await expect(fresh.close()).resolves.toBeUndefined();
    });
  });
}
