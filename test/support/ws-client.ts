/** A WebSocket client for the end-to-end tests: it queues the frames it receives for `next` to take. */
import WebSocket from 'ws';

/** How long `next` waits for a frame, and `closed` for the close when asked to: a generous ceiling. */
export const FRAME_TIMEOUT_MS = 20_000;

// biome-ignore lint/suspicious/noExplicitAny: frames are whatever JSON the server sent.
export type Frame = any;

export class WsClient {
  private frames: Frame[] = [];
  private waiter: (() => void) | undefined;
  private readonly closing: Promise<{ at: number; code: number }>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)));
      this.waiter?.();
    });
    this.closing = new Promise((resolve) =>
      socket.once('close', (code) => resolve({ at: performance.now(), code })),
    );
    // Errors after opening end in a close, which the tests observe.
    socket.on('error', () => {});
  }

  static open(url: string): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      const client = new WsClient(socket);
      socket.once('open', () => resolve(client));
      socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`connection refused: HTTP ${response.statusCode}`)),
      );
      socket.once('error', reject);
    });
  }

  /** The HTTP status a refused connection gets (throws if it is accepted). */
  static refusal(url: string, protocol?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, protocol);
      socket.once('open', () => {
        socket.terminate();
        reject(new Error(`${url} was accepted`));
      });
      socket.once('unexpected-response', (_request, response) => {
        resolve(response.statusCode ?? 0);
        socket.terminate();
      });
      socket.once('error', () => {});
    });
  }

  /** Sends a Buffer as a binary frame, a string as it is, anything else as JSON. */
  send(frame: unknown): void {
    if (Buffer.isBuffer(frame)) this.socket.send(frame, { binary: true });
    else this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Frames received and not yet taken by `next`. */
  queued(): Frame[] {
    return [...this.frames];
  }

  /** Forgets frames received so far. */
  drain(): void {
    this.frames = [];
  }

  /** The oldest queued frame matching `predicate` (others stay queued), waiting up to `FRAME_TIMEOUT_MS`. */
  async next(predicate: (frame: Frame) => boolean = () => true): Promise<Frame> {
    const deadline = Date.now() + FRAME_TIMEOUT_MS;
    for (;;) {
      const index = this.frames.findIndex(predicate);
      if (index >= 0) return this.frames.splice(index, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no matching frame within ${FRAME_TIMEOUT_MS} ms (queued: ${JSON.stringify(this.frames)})`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  /**
   * Resolves when the socket has closed: when (`performance.now()`) and with which code. Without
   * `withinMs` the test's timeout bounds the wait; with it, it throws after that long.
   */
  async closed(withinMs?: number): Promise<{ at: number; code: number }> {
    if (withinMs === undefined) return this.closing;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the connection stayed open')), withinMs);
    });
    try {
      return await Promise.race([this.closing, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
