/**
 * The hybrid's replay of a token written under an issuer (lib/storage/hybrid/journal.ts): the
 * target inserts it only while the issuer is live there; a token whose issuer has not reached the
 * target yet waits (`pending`), one whose issuer is gone everywhere is dropped with it.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../lib/config/index.js';
import type { StoredToken } from '../../lib/storage/driver.js';
import { hashToken } from '../../lib/storage/facade.js';
import { applyEntry } from '../../lib/storage/hybrid/journal.js';
import { createMemoryDriver } from '../../lib/storage/memory/index.js';

const token = (id: string, issuerId: string | null): StoredToken => ({
  id,
  identity: id,
  scopes: ['admin'],
  resources: ['*'],
  createdAt: new Date().toISOString(),
  expiresAt: null,
  issuerId,
  hash: hashToken(`secret-${id}`),
});

describe('hybrid replay of a token under an issuer', () => {
  const drivers = () => ({
    source: createMemoryDriver(resolveConfig({})),
    target: createMemoryDriver(resolveConfig({})),
  });

  it('waits while the issuer is live on the source but not yet on the target, then lands once it is', async () => {
    const { source, target } = drivers();
    const issuer = token('issuer', null);
    const child = token('child', 'issuer');
    await source.tokens.insert(issuer);
    await source.tokens.insert(child);
    expect(await applyEntry({ t: 'token', token: child }, target, source)).toBe('pending');
    expect(await target.tokens.findById('child')).toBeUndefined();
    expect(await applyEntry({ t: 'token', token: issuer }, target, source)).toBe('done');
    expect(await applyEntry({ t: 'token', token: child }, target, source)).toBe('done');
    expect((await target.tokens.findById('child'))?.issuerId).toBe('issuer');
    expect(await target.tokens.revoke('issuer')).toEqual(['issuer', 'child']);
  });

  it('is dropped when its issuer was revoked: no orphan on the target', async () => {
    const { source, target } = drivers();
    const issuer = token('issuer', null);
    const child = token('child', 'issuer');
    await source.tokens.insert(issuer);
    await source.tokens.insert(child);
    await target.tokens.insert(issuer);
    await target.tokens.revoke('issuer');
    await source.tokens.revoke('issuer');
    expect(await applyEntry({ t: 'token', token: child }, target, source)).toBe('done');
    expect(await target.tokens.findById('child')).toBeUndefined();
  });
});
