import { describe, expect, it } from 'vitest';
import type { TokenInfo } from '../../lib/storage/types.js';
import type { Fixture } from '../support/fixture.js';
import { isoMs, name, sleep } from '../support/helpers.js';

const INFO_KEYS = ['createdAt', 'expiresAt', 'id', 'identity', 'issuerId', 'resources', 'scopes'];

export function describeTokens(f: Fixture): void {
  const tokens = () => f.storage().tokens;

  describe('tokens', () => {
    it('issue answers the secret once with id, identity, scopes, resources ["*"], createdAt, expiresAt null', async () => {
      const identity = name('who');
      const before = Date.now();
      const issued = await tokens().issue({ identity, scopes: ['kv:read', 'queues:send'] });
      expect(typeof issued.token).toBe('string');
      expect(issued.token.length).toBeGreaterThanOrEqual(32);
      expect(typeof issued.id).toBe('string');
      expect(issued).toMatchObject({
        identity,
        scopes: ['kv:read', 'queues:send'],
        resources: ['*'],
        expiresAt: null,
        issuerId: null,
      });
      expect(isoMs(issued.createdAt)).toBeGreaterThanOrEqual(before - 1000);
      expect(issued.token).not.toBe(issued.id);
    });

    it('issue keeps resources and sets expiresAt from ttl', async () => {
      const issued = await tokens().issue({
        identity: name('who'),
        scopes: ['admin'],
        resources: ['cluster-a/*', 'jobs'],
        ttl: 3600,
      });
      expect(issued.resources).toEqual(['cluster-a/*', 'jobs']);
      const lifetime = isoMs(issued.expiresAt) - isoMs(issued.createdAt);
      expect(lifetime).toBeGreaterThanOrEqual(3_599_000);
      expect(lifetime).toBeLessThanOrEqual(3_601_000);
    });

    it('every issue answers a different token and id', async () => {
      const identity = name('who');
      const issued = await Promise.all(
        Array.from({ length: 10 }, () => tokens().issue({ identity, scopes: ['kv:read'] })),
      );
      expect(new Set(issued.map((t) => t.token)).size).toBe(10);
      expect(new Set(issued.map((t) => t.id)).size).toBe(10);
    });

    it('verify answers the token info without the secret', async () => {
      const { token, ...info } = await tokens().issue({ identity: name('who'), scopes: ['events:publish'] });
      const verified = await tokens().verify(token);
      expect(verified).toEqual(info);
      expect(Object.keys(verified ?? {}).sort()).toEqual(INFO_KEYS);
      expect(JSON.stringify(verified)).not.toContain(token);
    });

    it('verify answers undefined for unknown and garbage tokens', async () => {
      const { token } = await tokens().issue({ identity: name('who'), scopes: ['kv:read'] });
      const last = token.at(-1) === 'A' ? 'B' : 'A';
      expect(await tokens().verify(`${token.slice(0, -1)}${last}`)).toBeUndefined();
      expect(await tokens().verify(`${token}x`)).toBeUndefined();
      expect(await tokens().verify(token.slice(0, -1))).toBeUndefined();
      expect(await tokens().verify('not-a-token')).toBeUndefined();
      expect(await tokens().verify(name('garbage').repeat(10))).toBeUndefined();
      expect(await tokens().verify("' OR 1=1 --")).toBeUndefined();
      // The real token still works.
      expect(await tokens().verify(token)).toBeDefined();
    });

    it('revoke makes the next verify and get fail and answers the revoked id; revoking again answers []', async () => {
      const issued = await tokens().issue({ identity: name('who'), scopes: ['kv:write'] });
      expect(await tokens().verify(issued.token)).toBeDefined();
      expect(await tokens().revoke(issued.id)).toEqual([issued.id]);
      expect(await tokens().verify(issued.token)).toBeUndefined();
      expect(await tokens().get(issued.id)).toBeUndefined();
      expect(await tokens().revoke(issued.id)).toEqual([]);
      expect((await tokens().list()).map((t) => t.id)).not.toContain(issued.id);
      expect(await tokens().revoke(name('unknown'))).toEqual([]);
    });

    it('get answers the live token by id, as verify does, and undefined for an unknown id', async () => {
      const { token, ...info } = await tokens().issue({
        identity: name('who'),
        scopes: ['kv:read'],
        ttl: 60,
      });
      expect(await tokens().get(info.id)).toEqual(info);
      expect(await tokens().get(info.id)).toEqual(await tokens().verify(token));
      expect(await tokens().get(name('unknown'))).toBeUndefined();
      expect(JSON.stringify(await tokens().get(info.id))).not.toContain(token);
    });

    it('revoking one token leaves the others of the same identity working', async () => {
      const identity = name('who');
      const a = await tokens().issue({ identity, scopes: ['kv:read'] });
      const b = await tokens().issue({ identity, scopes: ['kv:read'] });
      await tokens().revoke(a.id);
      expect(await tokens().verify(a.token)).toBeUndefined();
      expect((await tokens().verify(b.token))?.id).toBe(b.id);
    });

    it('an expired token fails verify and leaves list()', async () => {
      const issued = await tokens().issue({ identity: name('who'), scopes: ['kv:read'], ttl: 0.3 });
      await sleep(600);
      expect(await tokens().verify(issued.token)).toBeUndefined();
      expect((await tokens().list()).map((t) => t.id)).not.toContain(issued.id);
      expect(await tokens().get(issued.id)).toBeUndefined();
      expect(await tokens().revoke(issued.id)).toEqual([]);
    });

    it('list answers live tokens oldest first, with no secret or hash', async () => {
      const identity = name('who');
      const first = await tokens().issue({ identity, scopes: ['kv:read'] });
      await sleep(5);
      const second = await tokens().issue({ identity, scopes: ['admin'], ttl: 600 });
      const listed = await tokens().list();
      const mine = listed.filter((t) => t.identity === identity);
      const { token: _t1, ...firstInfo } = first;
      const { token: _t2, ...secondInfo } = second;
      expect(mine).toEqual([firstInfo, secondInfo]);
      for (const info of listed) expect(Object.keys(info).sort()).toEqual(INFO_KEYS);
      const text = JSON.stringify(listed);
      expect(text).not.toContain(first.token);
      expect(text).not.toContain(second.token);
      // Neither the token nor anything shaped like a hex SHA-256 digest is exposed.
      expect(text).not.toMatch(/[0-9a-f]{64}/i);
      // Oldest first over the whole list.
      const created = listed.map((t: TokenInfo) => Date.parse(t.createdAt));
      expect([...created].sort((a, b) => a - b)).toEqual(created);
    });
  });
}
