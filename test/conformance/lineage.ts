import { describe, expect, it } from 'vitest';
import { ForbiddenError, UnauthorizedError, ValidationError } from '../../lib/errors.js';
import type { IssuedToken, IssueTokenInput, Scope } from '../../lib/storage/types.js';
import type { Fixture } from '../support/fixture.js';
import { failure, isoMs, name } from '../support/helpers.js';

/** Rounds of issue-while-revoking in the race test: enough to land inside the window many times. */
const RACE_ROUNDS = 25;
/** Tokens issued under the issuer in each round, concurrently with its revoke. */
const RACE_CHILDREN = 4;

export function describeLineage(f: Fixture): void {
  const tokens = () => f.storage().tokens;
  const issue = (input: Partial<IssueTokenInput> = {}) =>
    tokens().issue({ identity: name('who'), scopes: ['admin'], ...input });
  const under = (issuer: IssuedToken, input: Partial<IssueTokenInput> = {}) =>
    issue({ ...input, issuerId: issuer.id });

  describe('token lineage', () => {
    it('a token issued by a token records its issuerId; get and verify answer it', async () => {
      const root = await issue();
      const child = await under(root, { scopes: ['kv:read'] });
      expect(root.issuerId).toBeNull();
      expect(child.issuerId).toBe(root.id);
      expect((await tokens().get(child.id))?.issuerId).toBe(root.id);
      expect((await tokens().verify(child.token))?.issuerId).toBe(root.id);
      expect((await tokens().list()).find((t) => t.id === child.id)?.issuerId).toBe(root.id);
    });

    it('revoking a token revokes every token below it, transitively, and answers their ids (its own first)', async () => {
      const root = await issue();
      const a = await under(root);
      const b = await under(root, { scopes: ['kv:read'] });
      const a1 = await under(a, { scopes: ['kv:write'] });
      const a11 = await under(a1, { scopes: ['kv:write'] });
      const other = await issue();
      const otherChild = await under(other, { scopes: ['kv:read'] });

      const revoked = await tokens().revoke(root.id);
      expect(revoked[0]).toBe(root.id);
      expect([...revoked].sort()).toEqual([root.id, a.id, b.id, a1.id, a11.id].sort());
      for (const t of [root, a, b, a1, a11]) {
        expect(await tokens().verify(t.token)).toBeUndefined();
        expect(await tokens().get(t.id)).toBeUndefined();
      }
      expect((await tokens().get(other.id))?.id).toBe(other.id);
      expect((await tokens().verify(otherChild.token))?.id).toBe(otherChild.id);
      expect(await tokens().revoke(a1.id)).toEqual([]);
    });

    it('revoking a token leaves its issuer and its siblings working', async () => {
      const root = await issue();
      const a = await under(root);
      const b = await under(root);
      const a1 = await under(a);
      expect((await tokens().revoke(a.id)).sort()).toEqual([a.id, a1.id].sort());
      expect((await tokens().get(root.id))?.id).toBe(root.id);
      expect((await tokens().verify(b.token))?.id).toBe(b.id);
      // The issuer still issues, and its revoke now reaches only what is left.
      const c = await under(root);
      expect((await tokens().revoke(root.id)).sort()).toEqual([root.id, b.id, c.id].sort());
    });

    it('without ttl a token expires with its issuer; a ttl within it is kept', async () => {
      const root = await issue({ ttl: 3600 });
      const inherits = await under(root);
      expect(inherits.expiresAt).toBe(root.expiresAt);
      const shorter = await under(root, { ttl: 60 });
      const lifetime = isoMs(shorter.expiresAt) - isoMs(shorter.createdAt);
      expect(lifetime).toBeGreaterThanOrEqual(59_000);
      expect(lifetime).toBeLessThanOrEqual(61_000);
      // A grandchild of a non-expiring token below an expiring one still inherits the expiry.
      const grandchild = await under(inherits);
      expect(grandchild.expiresAt).toBe(root.expiresAt);
      // Under a token that never expires, no ttl means none.
      expect((await under(await issue())).expiresAt).toBeNull();
    });

    it('a ttl past the issuer’s expiry is a ValidationError naming both times, and issues nothing', async () => {
      const root = await issue({ ttl: 60 });
      const identity = name('late');
      const error = await failure(() => under(root, { identity, ttl: 120 }));
      expect(error).toBeInstanceOf(ValidationError);
      const message = (error as Error).message;
      expect(message).toContain(root.expiresAt);
      expect(message).toMatch(
        /ttl: the token would expire at \d{4}-\d\d-\d\dT[\d:.]+Z, after the issuing token/,
      );
      expect((await tokens().list()).some((t) => t.identity === identity)).toBe(false);
    });

    it('scopes stay within the issuer’s: admin implies all; admin only from an admin token', async () => {
      const root = await issue();
      const narrow = await under(root, { scopes: ['kv:read', 'kv:write'] });
      expect((await under(narrow, { scopes: ['kv:read'] })).scopes).toEqual(['kv:read']);
      const wider = await failure(() => under(narrow, { scopes: ['kv:read', 'queues:send'] }));
      expect(wider).toBeInstanceOf(ForbiddenError);
      expect((wider as Error).message).toMatch(/lacks scope queues:send/);
      const admin = await failure(() => under(narrow, { scopes: ['admin'] }));
      expect(admin).toBeInstanceOf(ForbiddenError);
      expect((admin as Error).message).toMatch(/only an admin token may issue a token with scope admin/);
      const all: Scope[] = ['kv:read', 'sessions:write', 'events:subscribe', 'admin'];
      expect((await under(root, { scopes: all })).scopes).toEqual(all);
    });

    it('resources stay within the issuer’s globs', async () => {
      const root = await issue({ resources: ['team-a/*', 'shared'] });
      expect((await under(root, { resources: ['team-a/x/*', 'shared'] })).resources).toEqual([
        'team-a/x/*',
        'shared',
      ]);
      for (const resources of [['team-b/*'], ['*'], ['team-a/*', 'shared*']]) {
        const error = await failure(() => under(root, { resources }));
        expect(error, JSON.stringify(resources)).toBeInstanceOf(ForbiddenError);
        expect((error as Error).message).toMatch(/beyond its own resources \(team-a\/\*, shared\)/);
      }
      // Default resources ["*"] reach beyond a limited issuer.
      expect(await failure(() => under(root))).toBeInstanceOf(ForbiddenError);
    });

    it('an issuer that is revoked, expired or unknown issues nothing (UnauthorizedError)', async () => {
      const revoked = await issue();
      await tokens().revoke(revoked.id);
      const expired = await issue({ ttl: 0.05 });
      await new Promise((resolve) => setTimeout(resolve, 120));
      for (const issuerId of [revoked.id, expired.id, name('unknown')]) {
        const identity = name('orphan');
        const error = await failure(() => issue({ identity, issuerId }));
        expect(error, issuerId).toBeInstanceOf(UnauthorizedError);
        expect((error as Error).message).toContain(issuerId);
        expect((await tokens().list()).some((t) => t.identity === identity)).toBe(false);
      }
    });

    it(`no token outlives its issuer's revoke: issue and revoke racing (${RACE_ROUNDS} rounds)`, async () => {
      let issuedInRace = 0;
      let refused = 0;
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const root = await issue();
        const middle = await under(root);
        // Children of the root and of its child, issued while the root is revoked.
        const attempts = Array.from({ length: RACE_CHILDREN }, (_, i) =>
          under(i % 2 === 0 ? root : middle, { scopes: ['kv:read'] }),
        );
        const [revoking, ...results] = await Promise.allSettled([tokens().revoke(root.id), ...attempts]);
        if (revoking?.status !== 'fulfilled') throw revoking?.reason;
        const revoked = revoking.value;
        expect(revoked[0]).toBe(root.id);
        expect(revoked).toContain(middle.id);
        for (const result of results) {
          if (result.status === 'rejected') {
            expect(result.reason).toBeInstanceOf(UnauthorizedError);
            refused++;
            continue;
          }
          issuedInRace++;
          const child = result.value;
          // Issued before the revoke took its issuer: the revoke found it and answered it.
          expect(revoked).toContain(child.id);
          expect(await tokens().verify(child.token)).toBeUndefined();
          expect(await tokens().get(child.id)).toBeUndefined();
        }
      }
      // Every attempt either issued (and its token went with the revoke) or was refused.
      expect(issuedInRace + refused).toBe(RACE_ROUNDS * RACE_CHILDREN);
    });
  });
}
