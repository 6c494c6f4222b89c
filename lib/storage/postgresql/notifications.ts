import { PoolerMismatchError } from '../../errors.js';
import type { Sql } from './sql.js';

export type Wakeups = ReturnType<typeof notifications>;

export function notifications(db: () => Promise<Sql>, enabled: boolean, state: { closed: boolean }) {
  /** channel → handlers; a handler gets the payload, or undefined after a reconnect (anything may have happened). */
  const handlers = new Map<string, Set<(payload: string | undefined) => void>>();
  const stops = new Map<string, Promise<(() => Promise<void>) | undefined>>();
  /** Channels whose LISTEN is established. */
  const live = new Set<string>();
  /**
   * Channels a caller stopped waiting for before their LISTEN was established: notifications
   * sent meanwhile were never heard, so handlers are told once it is (as after a reconnect).
   */
  const unheard = new Set<string>();
  /** Why LISTEN cannot work on this connection, once a check found out (waits poll instead). */
  let mismatch: PoolerMismatchError | undefined;
  const noteFailure = (error: unknown) => {
    if (!(error instanceof PoolerMismatchError) || mismatch !== undefined) return;
    mismatch = error;
    console.error(JSON.stringify({ level: 'ERROR', message: error.message, setting: error.setting }));
  };
  /** Resolves when the storage closes: waits for a LISTEN to start end then. */
  let endWaits: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    endWaits = resolve;
  });
  /** Failed starts in a row, by channel (the next retry waits longer). */
  const failures = new Map<string, number>();
  /**
   * Starts listening on `channel` once. After a failure it starts again by itself while anyone
   * handles the channel (1 s, doubling to 30 s), or on a later call; never when LISTEN cannot work here.
   */
  const start = (channel: string) => {
    let stop = stops.get(channel);
    if (stop) return stop;
    stop = (async () => {
      const sql = await db();
      if (!sql.listen || state.closed) return undefined;
      const dispatch = (payload: string | undefined) => {
        for (const handler of handlers.get(channel) ?? []) handler(payload);
      };
      const stop = await sql.listen(channel, {
        onNotify: dispatch,
        onReconnect: () => {
          live.add(channel);
          dispatch(undefined);
        },
        onDisconnect: () => {
          // Until it is back, waiters poll at the short interval: wake them so they reschedule.
          live.delete(channel);
          dispatch(undefined);
        },
      });
      live.add(channel);
      failures.delete(channel);
      if (unheard.delete(channel)) dispatch(undefined);
      return async () => {
        live.delete(channel);
        await stop();
      };
    })();
    // Listening is an optimisation: when it fails, polling still finds everything.
    stop.catch((error) => {
      noteFailure(error);
      const failed = (failures.get(channel) ?? 0) + 1;
      failures.set(channel, failed);
      setTimeout(
        () => {
          stops.delete(channel);
          if (state.closed || mismatch !== undefined || !handlers.get(channel)?.size) return;
          // Its waiters poll meanwhile; what was sent before it starts is never heard.
          unheard.add(channel);
          start(channel).catch(() => {});
        },
        Math.min(1000 * 2 ** (failed - 1), 30_000),
      ).unref();
    });
    stops.set(channel, stop);
    return stop;
  };
  return {
    enabled,
    /** Whether notifications on `channel` flow (else callers poll at the short interval). */
    isLive: (channel: string) => live.has(channel),
    /** What an operator should change for notifications to flow (see `Driver.warnings`). */
    warnings: (): string[] => (mismatch ? [mismatch.message] : []),
    /** Registers `handler` for `channel`'s notifications (they flow once `listen` has started). */
    handle(channel: string, handler: (payload: string | undefined) => void): () => void {
      let set = handlers.get(channel);
      if (!set) {
        set = new Set();
        handlers.set(channel, set);
      }
      set.add(handler);
      return () => set.delete(handler);
    },
    /**
     * Starts listening on `channel`; resolves once notifications flow, or when they cannot, or
     * after `maxWaitMs` (handlers then hear `undefined` once they flow: what was sent before is lost).
     */
    async listen(channel: string, maxWaitMs: number): Promise<void> {
      if (!enabled || state.closed) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        start(channel).catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            if (!live.has(channel)) unheard.add(channel);
            resolve();
          }, maxWaitMs);
        }),
        closed,
      ]);
      clearTimeout(timer);
    },
    /** Stops listening without waiting for a LISTEN still connecting (it is stopped once it has). */
    close() {
      endWaits();
      handlers.clear();
      live.clear();
      unheard.clear();
      failures.clear();
      const all = [...stops.values()];
      stops.clear();
      for (const stop of all) stop.then((off) => off?.()).catch(() => {});
    },
  };
}
