/**
 * Natural batching (group commit): the first call goes out at once; calls made while a batch is
 * in flight wait for it and then go out together, as one statement and one commit. A lone
 * caller pays no delay, and under concurrency the statements per call fall with the number of
 * callers, without a timer.
 */
export class Batcher<I, R> {
  private pending: { item: I; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private flushing = false;

  /**
   * `run` answers one result per item, in order (or throws for the whole batch); `limit` caps
   * the items of one batch.
   */
  constructor(
    private readonly run: (items: I[]) => Promise<R[]>,
    private readonly limit = 500,
    /** Called when the last batch is done and nothing waits (to drop a batcher kept per key). */
    private readonly onIdle?: () => void,
  ) {}

  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.limit);
      try {
        const results = await this.run(batch.map((b) => b.item));
        for (const [i, b] of batch.entries()) b.resolve(results[i]!);
      } catch (error) {
        for (const b of batch) b.reject(error);
      }
    }
    this.flushing = false;
    this.onIdle?.();
  }
}

/** One Batcher per key (a queue's name, say), dropped when idle so keys never pile up. */
export class KeyedBatcher<I, R> {
  private readonly batchers = new Map<string, Batcher<I, R>>();

  constructor(
    private readonly run: (key: string, items: I[]) => Promise<R[]>,
    private readonly limit = 500,
  ) {}

  add(key: string, item: I): Promise<R> {
    let batcher = this.batchers.get(key);
    if (batcher === undefined) {
      batcher = new Batcher<I, R>(
        (items) => this.run(key, items),
        this.limit,
        () => this.batchers.delete(key),
      );
      this.batchers.set(key, batcher);
    }
    return batcher.add(item);
  }
}
