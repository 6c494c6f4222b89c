/**
 * The in-process waits of one storage's long-polling receivers, per queue: a receive that found
 * its queue empty sleeps here until its next look, or until a notification of its queue (or a
 * reconnect, or the storage closing) wakes it.
 */
export class QueueWaits {
  /** In-process waiters per queue, woken by a notification or when the storage closes. */
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Notifications seen per queue (and in all, for reconnects): a receive that saw one while claiming looks again at once. */
  private readonly signals = new Map<string, number>();
  private reconnects = 0;

  /** Changes with every notification of `queue` seen while it has waiters, and every reconnect. */
  signalOf(queue: string): string {
    return `${this.signals.get(queue) ?? 0}:${this.reconnects}`;
  }

  /** A notification of `queue`; `undefined` (a reconnect, or the storage closing) wakes every queue's waiters. */
  readonly wake = (queue: string | undefined): void => {
    if (queue === undefined) {
      this.reconnects++;
      for (const set of this.waiters.values()) for (const w of set) w();
      return;
    }
    if (this.waiters.has(queue)) this.signals.set(queue, (this.signals.get(queue) ?? 0) + 1);
    for (const w of this.waiters.get(queue) ?? []) w();
  };

  /**
   * A slot in the queue's waiters for the whole of a receive, so notifications are counted from
   * now; answers its release.
   */
  hold(queue: string): () => void {
    const mine = this.waitersOf(queue);
    const keep = () => {};
    mine.add(keep);
    return () => {
      mine.delete(keep);
      if (mine.size === 0 && this.waiters.get(queue) === mine) {
        this.waiters.delete(queue);
        this.signals.delete(queue);
      }
    };
  }

  /** Until `delayMs` has passed (1 ms at least) or `queue` is woken. */
  sleep(queue: string, delayMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const set = this.waitersOf(queue);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.waiters.get(queue) === set) this.waiters.delete(queue);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, delayMs));
      set.add(done);
    });
  }

  private waitersOf(queue: string): Set<() => void> {
    let set = this.waiters.get(queue);
    if (!set) {
      set = new Set();
      this.waiters.set(queue, set);
    }
    return set;
  }
}
