/** Queue throughput: N jobs sent by 8 producers while C consumers process them, timed from the first send to the last completion. */
import type { Storage } from '../../lib/storage/index.js';
import { median } from './measure.js';
import type { ThroughputRow } from './results.js';

export const PRODUCERS = 8;

/** A system under test: starts its consumers (which call `done()` once per processed job), sends jobs, stops. */
export interface QueueSystem {
  start(consumers: number, done: () => void): Promise<void>;
  send(n: number): Promise<unknown>;
  stop(): Promise<void>;
}

/** Jobs per second for one run of `jobs` jobs through `system` with `consumers` consumers. */
export async function queueRun(system: QueueSystem, jobs: number, consumers: number): Promise<number> {
  let processed = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  await system.start(consumers, () => {
    if (++processed === jobs) finish();
  });
  const started = performance.now();
  let sent = 0;
  await Promise.all(
    Array.from({ length: PRODUCERS }, async () => {
      while (sent < jobs) await system.send(sent++);
    }),
  );
  await finished;
  const elapsed = performance.now() - started;
  await system.stop();
  return (jobs / elapsed) * 1000;
}

/** `reps` runs, each on a fresh system from `make`; the median jobs/s reported. */
export async function queueThroughput(
  name: string,
  make: (rep: number) => QueueSystem | Promise<QueueSystem>,
  jobs: number,
  consumers: number,
  reps: number,
): Promise<ThroughputRow> {
  const runs: number[] = [];
  for (let r = 0; r < reps; r++) runs.push(await queueRun(await make(r), jobs, consumers));
  return { system: name, consumers, jobs, jobsPerSec: median(runs), reps: runs };
}

/** The library's queue as a QueueSystem: consumers long-poll `receive` (up to `max` messages) and `ack` them together. */
export function libraryQueue(storage: Storage, queue: string, max = 1): QueueSystem {
  let running: Promise<void>[] = [];
  let stopped = false;
  return {
    async start(consumers, done) {
      stopped = false;
      const consume = async () => {
        while (!stopped) {
          // The messages of one receive are acknowledged together, as pg-boss completes its batch.
          const messages = await storage.queues.receive(queue, { max, wait: 1 });
          await Promise.all(messages.map((m) => storage.queues.ack(queue, m.id, m.receipt).then(done)));
        }
      };
      running = Array.from({ length: consumers }, consume);
    },
    send: (n) => storage.queues.send(queue, { n, task: 'bench' }),
    async stop() {
      stopped = true;
      await Promise.all(running);
    },
  };
}
