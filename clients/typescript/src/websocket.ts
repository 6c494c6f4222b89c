/** The part of the WebSocket interface subscribe uses: browsers' WebSocket and the `ws` package both have it. */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketFactory = (url: string) => WebSocketLike | Promise<WebSocketLike>;

type WebSocketClass = new (url: string) => WebSocketLike;

/** The `ws` package on Node (Node 20 has no WebSocket of its own), the global WebSocket elsewhere. */
export const defaultWebSocket: WebSocketFactory = async (url) => {
  const isNode = typeof process !== 'undefined' && process.versions?.node !== undefined;
  const global = (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
  if (!isNode && global) return new global(url);
  const { default: WebSocket } = (await import('ws')) as unknown as { default: WebSocketClass };
  return new WebSocket(url);
};
