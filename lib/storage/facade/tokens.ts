/**
 * Tokens: issue (bounded by the issuer's own grant), look up, verify, revoke and list. Only a
 * token's SHA-256 is stored; the configured bootstrap token is answered without the driver.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { UnauthorizedError, ValidationError } from '../../errors.js';
import { MAX_LIST_LIMIT, MAX_OPAQUE_STRING_CHARS } from '../../limits.js';
import type { StoredToken, TokenDriver } from '../driver.js';
import { boundByIssuer } from '../lineage.js';
import { checkPageOptions, encodeCursor, tokenCursorPosition, walkPages } from '../paging.js';
import type { TokenInfo, TokenStore } from '../types.js';
import { checkGlobs, checkName, checkOptionalName, checkOptions, checkTtl } from '../validate.js';
import { checkScopes } from './checks.js';

export function createTokenStore(driver: TokenDriver, bootstrapTokenHash: string | undefined): TokenStore {
  const bootstrap = bootstrapToken(bootstrapTokenHash);
  /** The issuer of a new token; undefined for none (the bootstrap token issues without one). */
  const issuerOf = async (issuerId: string | undefined): Promise<TokenInfo | undefined> => {
    if (issuerId === undefined || issuerId === bootstrap?.info.id) return undefined;
    const issuer = await driver.findById(issuerId);
    if (!issuer) throw issuerGone(issuerId);
    return issuer;
  };
  return {
    async issue(input) {
      const i = checkOptions('input', input, ['identity', 'scopes', 'resources', 'ttl', 'issuerId']);
      if (input === undefined) throw new ValidationError('input', 'is required');
      const identity = checkName('identity', i.identity);
      const scopes = checkScopes(i.scopes);
      const resources = i.resources === undefined ? ['*'] : checkGlobs('resources', i.resources);
      const ttlMs = i.ttl === undefined ? undefined : checkTtl('ttl', i.ttl);
      const issuer = await issuerOf(checkOptionalName('issuerId', i.issuerId));
      const now = Date.now();
      const asked = ttlMs === undefined ? null : now + ttlMs;
      const expiresAtMs = issuer ? boundByIssuer(issuer, { scopes, resources, expiresAtMs: asked }) : asked;
      const token = `kbs_${randomBytes(32).toString('base64url')}`;
      const record: StoredToken = {
        id: randomUUID(),
        identity,
        scopes,
        resources,
        createdAt: new Date(now).toISOString(),
        expiresAt: expiresAtMs === null ? null : new Date(expiresAtMs).toISOString(),
        issuerId: issuer?.id ?? null,
        hash: hashToken(token),
      };
      // Refused when the issuer was revoked (or expired) since it was read.
      if (!(await driver.insert(record))) throw issuerGone(record.issuerId ?? '');
      const { hash: _hash, ...info } = record;
      return { ...info, token };
    },
    async get(id) {
      checkName('id', id);
      if (bootstrap && id === bootstrap.info.id) return { ...bootstrap.info };
      return driver.findById(id);
    },
    async verify(token) {
      // Bad input here is an unknown token, not a ValidationError: callers answer 401 either way.
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_OPAQUE_STRING_CHARS)
        return undefined;
      const hash = hashToken(token);
      if (bootstrap && hashesEqual(hash, bootstrap.hash)) return { ...bootstrap.info };
      const record = await driver.findByHash(hash);
      if (!record || !hashesEqual(hash, record.hash)) return undefined;
      if (record.expiresAt !== null && Date.parse(record.expiresAt) <= Date.now()) return undefined;
      const { hash: _hash, ...info } = record;
      return info;
    },
    revoke: async (id) => driver.revoke(checkName('id', id)),
    list: async () => walkPages((after) => driver.page(after, MAX_LIST_LIMIT, undefined)),
    async page(options) {
      const { after, limit, within } = checkPageOptions(options, 'tokens.page()', tokenCursorPosition);
      const { items, next } = await driver.page(after, limit, within);
      return next === undefined ? { tokens: items } : { tokens: items, cursor: encodeCursor(next) };
    },
  };
}

/**
 * The bootstrap admin token of the configuration (its SHA-256 only). Its id is derived from the
 * hash, so a rotated bootstrap token (a new hash) is a different token: `get` of the old id
 * answers nothing, and connections opened with the old token are refused once they re-check.
 */
function bootstrapToken(configured: string | undefined): { hash: string; info: TokenInfo } | undefined {
  if (!configured) return undefined;
  const hash = configured.toLowerCase();
  return {
    hash,
    info: {
      id: `bootstrap:${createHash('sha256').update(`bootstrap-id:${hash}`).digest('hex').slice(0, 16)}`,
      identity: 'bootstrap',
      scopes: ['admin'],
      resources: ['*'],
      createdAt: '1970-01-01T00:00:00.000Z',
      expiresAt: null,
      issuerId: null,
    },
  };
}

function issuerGone(issuerId: string): UnauthorizedError {
  return new UnauthorizedError(
    `issuerId: the issuing token ${JSON.stringify(issuerId)} is unknown, expired or revoked`,
  );
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
