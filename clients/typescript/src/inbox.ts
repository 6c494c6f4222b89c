/**
 * What a receiver or subscription shows its reader: items a connection hands on, read by one
 * `for await` that ends when the owner closes or fails; and `ready`, once the first connection
 * got as far as it needs to.
 */
export class Inbox<T> {
  /** Resolves on `started()`; rejects on `fail` or `end` before that. */
  readonly ready: Promise<void>;
  private markReady!: { resolve: () => void; reject: (error: Error) => void };
  private readonly items: T[] = [];
  private waiting: (() => void) | undefined;
  private failure: Error | undefined;

  constructor() {
    this.ready = new Promise((resolve, reject) => {
      this.markReady = { resolve, reject };
    });
    // A rejection nobody awaits is not an unhandled one: the reader sees the failure too.
    this.ready.catch(() => {});
  }

  started(): void {
    this.markReady.resolve();
  }

  push(item: T): void {
    this.items.push(item);
    this.wake();
  }

  /** Drops the items not yet read. */
  clear(): void {
    this.items.length = 0;
  }

  /** Ends reading with `error` once the items before it are read; `ready` rejects with it if still pending. */
  fail(error: Error): void {
    this.failure = error;
    this.markReady.reject(error);
    this.wake();
  }

  /** The owner closed: `ready` rejects with `reason` if still pending, and a waiting reader looks at `closed()`. */
  end(reason: Error): void {
    this.markReady.reject(reason);
    this.wake();
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }

  /** The items as they come, until the failure (thrown) or `closed()`; `close` runs when the reader stops. */
  async *read(closed: () => boolean, close: () => void): AsyncGenerator<T> {
    try {
      while (true) {
        const item = this.items.shift();
        if (item) {
          yield item;
          continue;
        }
        if (this.failure) throw this.failure;
        if (closed()) return;
        await new Promise<void>((resolve) => {
          this.waiting = resolve;
        });
      }
    } finally {
      close();
    }
  }
}
