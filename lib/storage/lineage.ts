/**
 * Token lineage: what a token may issue. A token issued by another token stays within its
 * issuer — it expires no later, holds no scope the issuer lacks, and reaches no resource outside
 * the issuer's globs — so handing a token on can only narrow what it can do.
 */
import { ForbiddenError, ValidationError } from '../errors.js';
import { matchesAny } from '../glob.js';
import type { Scope, TokenInfo } from './types.js';

/** Whether `scopes` include `scope`; `admin` implies every scope. */
export function holdsScope(scopes: readonly Scope[], scope: Scope): boolean {
  return scopes.includes('admin') || scopes.includes(scope);
}

/**
 * Whether `globs` cover every name `patterns` can match: each pattern, read as a plain string,
 * must be matched by one of the globs. That is sound (a glob matching a pattern's text matches
 * every name the pattern matches, its `*` absorbing whatever the pattern's `*` stands for), if
 * not complete. `["*"]` covers everything.
 */
export function covers(globs: readonly string[], patterns: readonly string[]): boolean {
  return patterns.every((pattern) => matchesAny(globs, pattern));
}

/** What a new token asks for, checked and normalised. */
export interface TokenGrant {
  scopes: Scope[];
  resources: string[];
  /** Absolute expiry in ms, or null for none. */
  expiresAtMs: number | null;
}

/**
 * The grant bounded by `issuer`: answers its expiry (the issuer's when the grant has none and
 * the issuer expires). Throws `ForbiddenError` for a scope or resource beyond the issuer's and
 * `ValidationError` (field `ttl`) for an expiry after the issuer's.
 */
export function boundByIssuer(issuer: TokenInfo, grant: TokenGrant): number | null {
  if (grant.scopes.includes('admin') && !issuer.scopes.includes('admin')) {
    throw new ForbiddenError('only an admin token may issue a token with scope admin');
  }
  const missing = grant.scopes.filter((scope) => !holdsScope(issuer.scopes, scope));
  if (missing.length > 0) {
    throw new ForbiddenError(
      `the issuing token lacks scope ${missing.join(', ')} (it holds ${issuer.scopes.join(', ')}); a token can only pass on scopes it holds`,
    );
  }
  const wider = grant.resources.filter((pattern) => !covers(issuer.resources, [pattern]));
  if (wider.length > 0) {
    throw new ForbiddenError(
      `token may not issue access to ${wider.map((p) => JSON.stringify(p)).join(', ')} beyond its own resources (${issuer.resources.join(', ')})`,
    );
  }
  if (issuer.expiresAt === null) return grant.expiresAtMs;
  const issuerEndMs = Date.parse(issuer.expiresAt);
  if (grant.expiresAtMs === null) return issuerEndMs;
  if (grant.expiresAtMs > issuerEndMs) {
    throw new ValidationError(
      'ttl',
      `the token would expire at ${new Date(grant.expiresAtMs).toISOString()}, after the issuing token does (${issuer.expiresAt}); omit ttl to expire with it`,
    );
  }
  return grant.expiresAtMs;
}
