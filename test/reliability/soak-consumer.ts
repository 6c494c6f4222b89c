/**
 * One queue consumer of the crash soak (`soak.ts` bundles it and runs several as child
 * processes, killing them with SIGKILL at random). It receives with a long poll, "works" a
 * moment, acks, and writes one JSON line to stdout per event — a pipe write, synchronous on
 * Linux, so every line written before a SIGKILL reaches the parent whole:
 *
 * - `{e:'r', id, s, a, t0, t1, p}` a delivery: message id, sequence number, attempts, the
 *   receive call's start and end (ms since the epoch), the process id;
 * - `{e:'a', id, s, t, p}` an ack that succeeded; `{e:'af', id, s, t, p, m}` one that failed;
 * - `{e:'err', t, p, m}` a receive that failed.
 *
 * Environment: SOAK_STORAGE (the storage configuration, JSON), SOAK_QUEUE, SOAK_VISIBILITY (s).
 */
import { createStorage } from '../../lib/storage/index.js';

const storage = createStorage(JSON.parse(process.env.SOAK_STORAGE ?? '{}'));
const queue = process.env.SOAK_QUEUE ?? 'soak';
const visibilityTimeout = Number(process.env.SOAK_VISIBILITY ?? 5);
const p = process.pid;
const out = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error)).slice(0, 200);

for (;;) {
  const t0 = Date.now();
  let batch: Awaited<ReturnType<typeof storage.queues.receive>>;
  try {
    batch = await storage.queues.receive(queue, { max: 10, visibilityTimeout, wait: 1 });
  } catch (error) {
    out({ e: 'err', t: Date.now(), p, m: messageOf(error) });
    await sleep(100);
    continue;
  }
  const t1 = Date.now();
  for (const m of batch) {
    out({ e: 'r', id: m.id, s: (m.payload as { s: number }).s, a: m.attempts, t0, t1, p });
  }
  for (const m of batch) {
    await sleep(Math.random() * 3);
    const s = (m.payload as { s: number }).s;
    try {
      await storage.queues.ack(queue, m.id, m.receipt);
      out({ e: 'a', id: m.id, s, t: Date.now(), p });
    } catch (error) {
      out({ e: 'af', id: m.id, s, t: Date.now(), p, m: messageOf(error) });
    }
  }
}
