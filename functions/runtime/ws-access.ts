/**
 * Who may use the WebSocket API, checked at `$connect` (the authorizer) and on every frame: the
 * token a connection was opened with is looked up again by id for each frame, never cached, as
 * an HTTP request looks its token up, so a revoked or expired token stops working at its next
 * frame.
 */
import type { Principal } from '../../lib/auth.js';
import type { Connection, Scope, Storage } from '../../lib/storage/types.js';

/** A token needs one of these (or `admin`) to open a WebSocket: everything a socket can do. */
export const WEBSOCKET_SCOPES = [
  'events:subscribe',
  'events:publish',
  'queues:receive',
] as const satisfies readonly Scope[];

/** Whether a token with these scopes may open a WebSocket. */
export function canUseWebSocket(scopes: readonly Scope[]): boolean {
  return scopes.includes('admin') || WEBSOCKET_SCOPES.some((scope) => scopes.includes(scope));
}

/** Why `$connect` refuses a token that is valid but cannot use the socket. */
export const NO_WEBSOCKET_SCOPE = `token has none of the WebSocket scopes (${WEBSOCKET_SCOPES.join(', ')}, or admin)`;

/** The error frame's text when a connection's token no longer verifies; the connection is closed after it. */
export const TOKEN_INVALID_MESSAGE =
  'invalid token: unknown, expired or revoked; the connection is closed (reconnect with a valid token)';

/**
 * The principal of the connection's token as the tokens store holds it now (one lookup by id),
 * or `undefined` when it is unknown, revoked or expired. A registration that recorded no token
 * (`tokenId` '') never verifies.
 */
export async function currentPrincipal(
  storage: Storage,
  connection: Pick<Connection, 'tokenId'>,
): Promise<Principal | undefined> {
  if (connection.tokenId === '') return undefined;
  const token = await storage.tokens.get(connection.tokenId);
  if (!token) return undefined;
  if (token.expiresAt !== null && Date.parse(token.expiresAt) <= Date.now()) return undefined;
  return { id: token.id, identity: token.identity, scopes: token.scopes, resources: token.resources };
}
