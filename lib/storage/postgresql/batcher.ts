/**
 * Natural batching (group commit): the first call goes out at once; calls made while a batch is
 * in flight (or `maxInFlight` batches are) wait for it and then go out together, as one
 * statement and one commit. A lone
 * caller pays no delay, and under concurrency the statements per call fall with the number of
 * callers, without a timer.
 */
export class Batcher<I, R> {
  private pending: { item: I; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private inFlight = 0;

  /**
   * `run` answers one result per item, in order (or throws for the whole batch); `limit` caps
   * the items of one batch; `maxInFlight` batches may be under way at once (the next call goes
   * out at once while fewer are).
   */
  constructor(
    private readonly run: (items: I[]) => Promise<R[]>,
    private readonly limit = 500,
    /** Called when the last batch is done and nothing waits (to drop a batcher kept per key). */
    private readonly onIdle?: () => void,
    private readonly maxInFlight = 1,
  ) {}

  add(item: I): Promise<R> {
    // Nothing waits and there is room: this call goes out at once as a batch of its own, with
    // no queue entry or promise of its own in between (a lone caller's every call).
    if (this.inFlight < this.maxInFlight && this.pending.length === 0) {
      this.inFlight++;
      let sent: Promise<R[]>;
      try {
        sent = this.run([item]);
      } catch (error) {
        sent = Promise.reject(error);
      }
      void sent.then(this.done, this.done);
      return sent.then((results) => results[0]!);
    }
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.flush();
    });
  }

  /** A batch ended: the calls that waited for it go out next. */
  private readonly done = (): void => {
    this.inFlight--;
    this.flush();
    if (this.inFlight === 0 && this.pending.length === 0) this.onIdle?.();
  };

  private flush(): void {
    while (this.inFlight < this.maxInFlight && this.pending.length > 0) {
      const batch = this.pending.splice(0, this.limit);
      this.inFlight++;
      void this.send(batch).then(this.done);
    }
  }

  private async send(batch: typeof this.pending): Promise<void> {
    try {
      const results = await this.run(batch.map((b) => b.item));
      for (const [i, b] of batch.entries()) b.resolve(results[i]!);
    } catch (error) {
      for (const b of batch) b.reject(error);
    }
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
