/**
 * The WebSocket token in the `Sec-WebSocket-Protocol` header, for clients that cannot put it in
 * the query string (`?token=` ends up in access logs and browser history; browsers can set no
 * other header on a WebSocket). The client offers the token as a subprotocol, alone or after
 * `kubently`: `Sec-WebSocket-Protocol: kubently, <token>`. The `$connect` answer must name one of
 * the offered protocols or the client drops the connection: `kubently` when it was offered (so
 * the token is not sent back), else the token itself.
 */

/** The subprotocol a client may offer beside its token, and the one `$connect` then answers. */
export const PROTOCOL_NAME = 'kubently';

function headerValue(
  headers: Record<string, string | undefined> | null | undefined,
  name: string,
): string | undefined {
  for (const [key, value] of Object.entries(headers ?? {})) if (key.toLowerCase() === name) return value;
  return undefined;
}

/** The subprotocols offered, in order. */
export function offeredProtocols(headers: Record<string, string | undefined> | null | undefined): string[] {
  const value = headerValue(headers, 'sec-websocket-protocol');
  return (value ?? '')
    .split(',')
    .map((protocol) => protocol.trim())
    .filter((protocol) => protocol !== '');
}

/** The token among the offered subprotocols: the first that is not `kubently`. */
export function protocolToken(
  headers: Record<string, string | undefined> | null | undefined,
): string | undefined {
  return offeredProtocols(headers).find((protocol) => protocol !== PROTOCOL_NAME);
}

/** The `Sec-WebSocket-Protocol` `$connect` must answer with, or undefined when none was offered. */
export function acceptedProtocol(
  headers: Record<string, string | undefined> | null | undefined,
): string | undefined {
  const offered = offeredProtocols(headers);
  if (offered.length === 0) return undefined;
  return offered.includes(PROTOCOL_NAME) ? PROTOCOL_NAME : offered[0];
}
