/** Items a connection hands on, read by one `for await`: its end is the owner closing, or a failure. */
export class Inbox<T> {
  private readonly items: T[] = [];
  private waiting: (() => void) | undefined;
  private failure: Error | undefined;

  push(item: T): void {
    this.items.push(item);
    this.wake();
  }

  /** Drops the items not yet read. */
  clear(): void {
    this.items.length = 0;
  }

  /** Ends reading with `error` once the items before it are read. */
  fail(error: Error): void {
    this.failure = error;
    this.wake();
  }

  /** Lets a waiting reader look again (at `closed()`, say). */
  wake(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }

  /** The items as they come, until the failure (thrown) or `closed()`. */
  async *read(closed: () => boolean): AsyncGenerator<T> {
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
  }
}
