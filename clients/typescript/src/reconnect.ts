import { sleep } from './retry.js';
import { defaultWebSocket, type WebSocketFactory, type WebSocketLike } from './websocket.js';

/** How a receiver or subscription reopens a dropped connection. */
export interface ReconnectOptions {
  /** Reconnect delays: the first, doubled per failed attempt up to the largest (ms; 250 and 10 000). */
  reconnectDelayMs?: { min: number; max: number };
  /** Connection attempts in a row that may fail before giving up (default 10). */
  maxFailures?: number;
}

export interface SocketContext {
  wsUrl: string;
  token: string;
  webSocket: WebSocketFactory | undefined;
}

/** Opens a socket to the API, the token in the query (a browser WebSocket cannot send headers). */
export async function openSocket(context: SocketContext): Promise<WebSocketLike> {
  const url = new URL(context.wsUrl);
  url.searchParams.set('token', context.token);
  return (context.webSocket ?? defaultWebSocket)(url.toString());
}

/**
 * Runs `connection` (one socket, until it closes; true when it got as far as it needed to) again
 * and again until `closed()`, with jittered exponential back-off between attempts. Resolves with
 * the error to give up with: a fatal one `connection` threw, or `maxFailures` failures in a row;
 * undefined once closed.
 */
export async function reconnect(
  connection: () => Promise<boolean>,
  loop: {
    options: ReconnectOptions;
    closed: () => boolean;
    isFatal: (error: unknown) => boolean;
    signal: AbortSignal;
    /** What could not be done, for the give-up error: `could not subscribe to c`. */
    failing: string;
  },
): Promise<Error | undefined> {
  const { min, max } = loop.options.reconnectDelayMs ?? { min: 250, max: 10_000 };
  const maxFailures = loop.options.maxFailures ?? 10;
  let failures = 0;
  while (!loop.closed()) {
    let succeeded = false;
    try {
      succeeded = await connection();
    } catch (error) {
      if (loop.isFatal(error)) return error as Error;
    }
    if (loop.closed()) return undefined;
    failures = succeeded ? 0 : failures + 1;
    if (failures >= maxFailures) return new Error(`${loop.failing}: ${failures} connections failed`);
    const ceiling = Math.min(max, min * 2 ** failures);
    await sleep(ceiling / 2 + (Math.random() * ceiling) / 2, loop.signal).catch(() => {});
  }
  return undefined;
}
