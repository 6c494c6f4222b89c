/**
 * The in-process waits of one storage's long-polling receivers, per queue: a receive that found
 * its queue empty sleeps here until its next look, or until a notification of its queue (or a
 * reconnect, or the storage closing) wakes it.
 */
export function queueWaits() {
  /** In-process waiters per queue, woken by a notification or when the storage closes. */
  const waiters = new Map<string, Set<() => void>>();
  /** Notifications seen per queue (and in all, for reconnects): a receive that saw one while claiming looks again at once. */
  const signals = new Map<string, number>();
  let reconnects = 0;
  const waitersOf = (queue: string): Set<() => void> => {
    let set = waiters.get(queue);
    if (!set) {
      set = new Set();
      waiters.set(queue, set);
    }
    return set;
  };

  return {
    /** Changes with every notification of `queue` seen while it has waiters, and every reconnect. */
    signalOf: (queue: string): string => `${signals.get(queue) ?? 0}:${reconnects}`,

    /** A notification of `queue`; `undefined` (a reconnect, or the storage closing) wakes every queue's waiters. */
    wake(queue: string | undefined): void {
      if (queue === undefined) {
        reconnects++;
        for (const set of waiters.values()) for (const w of set) w();
        return;
      }
      if (waiters.has(queue)) signals.set(queue, (signals.get(queue) ?? 0) + 1);
      for (const w of waiters.get(queue) ?? []) w();
    },

    /**
     * A slot in the queue's waiters for the whole of a receive, so notifications are counted from
     * now; answers its release.
     */
    hold(queue: string): () => void {
      const mine = waitersOf(queue);
      const keep = () => {};
      mine.add(keep);
      return () => {
        mine.delete(keep);
        if (mine.size === 0 && waiters.get(queue) === mine) {
          waiters.delete(queue);
          signals.delete(queue);
        }
      };
    },

    /** Until `delayMs` has passed (1 ms at least) or `queue` is woken. */
    sleep(queue: string, delayMs: number): Promise<void> {
      return new Promise<void>((resolve) => {
        const set = waitersOf(queue);
        const done = () => {
          clearTimeout(timer);
          set.delete(done);
          if (set.size === 0 && waiters.get(queue) === set) waiters.delete(queue);
          resolve();
        };
        const timer = setTimeout(done, Math.max(1, delayMs));
        set.add(done);
      });
    },
  };
}
