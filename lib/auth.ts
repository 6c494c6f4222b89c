/**
 * Token authentication and authorization, shared by the HTTP middleware and the WebSocket
 * routes: where the token comes from, whether it is live (one lookup in the tokens store on
 * every request, never cached, so a revoked token fails at once), and whether its scopes and
 * resource globs allow an operation.
 */
import { ForbiddenError, UnauthorizedError } from './errors.js';
import { matchesAny } from './glob.js';
import type { Scope, TokenInfo, TokenStore } from './storage/types.js';

/** What a route needs: a scope and, for routes naming one, the resource (key, queue, channel, cluster id). */
export interface Permission {
  scope: Scope;
  resource?: string;
}

/** The identity a request runs as, from its verified token. */
export type Principal = Pick<TokenInfo, 'id' | 'identity' | 'scopes' | 'resources'>;

/** A principal with its token's expiry (null: never), for what outlives one request (a WebSocket). */
export type Authenticated = Principal & Pick<TokenInfo, 'expiresAt'>;

const BEARER = /^bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * The token a request carries: `Authorization: Bearer <token>`, else `X-Api-Key: <token>`.
 * Header names match case-insensitively (API Gateway lowercases them; other callers may not).
 * An `Authorization` header with another scheme does not hide an `X-Api-Key`.
 */
export function requestToken(
  headers: Record<string, string | undefined> | null | undefined,
): string | undefined {
  if (!headers) return undefined;
  let authorization: string | undefined;
  let apiKey: string | undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (lower === 'authorization') authorization = value;
    else if (lower === 'x-api-key') apiKey = value;
  }
  const bearer = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
  if (bearer) return bearer;
  const key = apiKey?.trim();
  return key ? key : undefined;
}

/**
 * The live token's principal; `UnauthorizedError` when the token is missing, unknown, expired
 * or revoked (docs/api.md: all 401, and the message does not say which, so a caller cannot probe).
 */
export async function authenticate(tokens: TokenStore, token: string | undefined): Promise<Authenticated> {
  if (token === undefined) {
    throw new UnauthorizedError('missing token: send Authorization: Bearer <token> or X-Api-Key: <token>');
  }
  const info = await tokens.verify(token);
  if (!info) throw new UnauthorizedError('invalid token: unknown, expired or revoked');
  return {
    id: info.id,
    identity: info.identity,
    scopes: info.scopes,
    resources: info.resources,
    expiresAt: info.expiresAt,
  };
}

/** Whether `principal` holds `scope` (`admin` implies every scope) over `resource`. */
export function allows(principal: Principal, { scope, resource }: Permission): boolean {
  const scoped = principal.scopes.includes('admin') || principal.scopes.includes(scope);
  if (!scoped) return false;
  return resource === undefined || matchesAny(principal.resources, resource);
}

/** Throws `ForbiddenError` naming what is missing unless `principal` may do it. */
export function authorize(principal: Principal, permission: Permission): void {
  if (allows(principal, permission)) return;
  const { scope, resource } = permission;
  if (!principal.scopes.includes('admin') && !principal.scopes.includes(scope)) {
    throw new ForbiddenError(`token lacks scope ${scope}`);
  }
  throw new ForbiddenError(
    `token may not access ${JSON.stringify(resource)} (resources: ${principal.resources.join(', ')})`,
  );
}

/**
 * The service identity a session created by `principal` carries: the token's own identity,
 * unless an admin token names another. A non-admin token naming another identity is refused
 * (it would record work as someone else's); naming its own is the same as leaving it out.
 */
export function sessionServiceIdentity(principal: Principal, requested: string | undefined): string {
  if (requested === undefined || requested === principal.identity) return principal.identity;
  if (principal.scopes.includes('admin')) return requested;
  throw new ForbiddenError(
    `serviceIdentity may only be set by an admin token; leave it out (or send this token's identity, ${JSON.stringify(principal.identity)})`,
  );
}
