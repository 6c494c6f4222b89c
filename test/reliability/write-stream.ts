/**
 * A stream of acknowledged writes for fault experiments: `writers` loops, each setting a kv key
 * of its own and sending a message, recording what was acknowledged (the call returned) and
 * what failed (the call threw: not acknowledged). Afterwards `verify` reads everything back
 * through a fresh storage and counts what was acknowledged and is gone.
 */
import type { Storage } from '../../lib/storage/index.js';

export const STREAM_QUEUE = 'fault-stream';

export interface StreamOutcome {
  /** Writes (kv sets and sends) attempted, acknowledged, failed. */
  attempted: number;
  acknowledged: number;
  failed: number;
  /** Time (ms, performance.now()) of each failure's end and each success's start and end. */
  failures: number[];
  successes: { startedAt: number; endedAt: number }[];
  /** Acknowledged kv writes: key → value. Acknowledged sends: "w:i". */
  kv: Map<string, number>;
  messages: Set<string>;
}

export interface WriteStream {
  stop(): Promise<StreamOutcome>;
}

/** Starts the writers; `stop()` ends them and answers what they saw. */
export function startWriteStream(storage: Storage, writers = 8): WriteStream {
  const outcome: StreamOutcome = {
    attempted: 0,
    acknowledged: 0,
    failed: 0,
    failures: [],
    successes: [],
    kv: new Map(),
    messages: new Set(),
  };
  let running = true;
  const attempt = async (write: () => Promise<unknown>, onAck: () => void) => {
    outcome.attempted++;
    const startedAt = performance.now();
    try {
      await write();
      outcome.acknowledged++;
      outcome.successes.push({ startedAt, endedAt: performance.now() });
      onAck();
    } catch {
      outcome.failed++;
      outcome.failures.push(performance.now());
      // A failing server is not hammered: a short pause, as a client retrying would.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const writer = async (w: number) => {
    for (let i = 0; running; i++) {
      const key = `k:${w}:${i}`;
      await attempt(
        () => storage.kv.set(key, i),
        () => outcome.kv.set(key, i),
      );
      await attempt(
        () => storage.queues.send(STREAM_QUEUE, { w, i }),
        () => outcome.messages.add(`${w}:${i}`),
      );
    }
  };
  const all = Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
  return {
    async stop() {
      running = false;
      await all;
      return outcome;
    },
  };
}

/**
 * ms from `faultAt` (the server already dead) until a write begun after it was acknowledged:
 * how long the service answered nothing, whether its calls failed or waited.
 */
export function recoveryMs(outcome: StreamOutcome, faultAt: number): number {
  const back = outcome.successes.find((s) => s.startedAt >= faultAt);
  return back === undefined ? Number.NaN : Math.round(back.endedAt - faultAt);
}

export interface Verification {
  lostKv: number;
  lostMessages: number;
  /** Messages delivered more than once while draining. */
  duplicated: number;
  /** Messages that were not acknowledged to the sender but are there (a send whose answer was lost). */
  unacknowledgedPresent: number;
}

/** Reads back every acknowledged write through `storage` (draining the queue). */
export async function verify(storage: Storage, outcome: StreamOutcome): Promise<Verification> {
  const keys = [...outcome.kv.keys()];
  let lostKv = 0;
  for (let i = 0; i < keys.length; i += 500) {
    const batch = keys.slice(i, i + 500);
    const values = await storage.kv.getMany(batch);
    batch.forEach((key, j) => {
      if (values[j] !== outcome.kv.get(key)) lostKv++;
    });
  }
  const seen = new Map<string, number>();
  for (;;) {
    const batch = await storage.queues.receive(STREAM_QUEUE, { max: 100 });
    if (batch.length === 0) break;
    for (const m of batch) {
      const { w, i } = m.payload as { w: number; i: number };
      const name = `${w}:${i}`;
      seen.set(name, (seen.get(name) ?? 0) + 1);
      await storage.queues.ack(STREAM_QUEUE, m.id, m.receipt);
    }
  }
  let lostMessages = 0;
  for (const name of outcome.messages) if (!seen.has(name)) lostMessages++;
  let duplicated = 0;
  let unacknowledgedPresent = 0;
  for (const [name, count] of seen) {
    duplicated += count - 1;
    if (!outcome.messages.has(name)) unacknowledgedPresent++;
  }
  return { lostKv, lostMessages, duplicated, unacknowledgedPresent };
}
