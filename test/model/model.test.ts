/**
 * Model-based property tests: random command sequences (fast-check) run against each backend
 * and, side by side, against a small model of the contract (test/model/*.ts); any difference
 * fails with the shrunk sequence. Time is real: deadlines are known within the window a call ran
 * in, and where a read cannot tell whether one passed, either answer is accepted (see time.ts).
 *
 * Runs are seeded and few by default, so the suite stays quick. More:
 *   MODEL_RUNS=500 npx vitest run test/model          (runs per store and backend, default 12)
 *   MODEL_SEED=42 npx vitest run test/model           (another seed; default fixed)
 *   CONFORMANCE_BACKENDS=redis npx vitest run test/model   (only some backends)
 * A failure prints the seed and path that reproduce it (`fc.assert` output).
 */
import fc from 'fast-check';
import { afterAll, describe, it } from 'vitest';
import type { Storage } from '../../lib/storage/types.js';
import {
  type Backend,
  hybridBackend,
  installHint,
  memoryBackend,
  postgresBackend,
  redisBackend,
} from '../support/backends.js';
import { name } from '../support/helpers.js';
import { kvCommand, runKv } from './kv.js';
import { MAX_ATTEMPTS, queueCommand, runQueue } from './queues.js';
import { queueRegressions } from './regressions.js';
import { runSessions, sessionCommand } from './sessions.js';

const RUNS = Number(process.env.MODEL_RUNS || 12);
const SEED = Number(process.env.MODEL_SEED || 20_261_205);
const LENGTH = { minLength: 3, maxLength: 30, size: 'max' } as const;

const backends: Backend[] = [
  memoryBackend,
  redisBackend(),
  postgresBackend({ name: 'postgresql-pg', driver: 'pg' }),
  hybridBackend({ name: 'hybrid', options: { operationTimeoutMs: 5000 } }),
].filter((b) => {
  const wanted = process.env.CONFORMANCE_BACKENDS?.split(',').map((s) => s.trim());
  return !wanted?.length || wanted.includes(b.name);
});

async function check<C>(
  storage: Storage,
  commands: fc.Arbitrary<C>,
  run: (storage: Storage, prefix: string, commands: C[]) => Promise<void>,
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.array(commands, LENGTH), (sequence) => run(storage, `${name('model')}:`, sequence)),
    { numRuns: RUNS, seed: SEED },
  );
}

for (const backend of backends) {
  const unavailable = await backend.available();
  if (unavailable !== undefined && process.env.CI)
    throw new Error(`${backend.name} is required under CI: ${unavailable}`);
  const title = `model [${backend.name}]${unavailable ? ` — SKIPPED: ${unavailable} (${installHint(backend)})` : ''}`;
  describe.skipIf(unavailable !== undefined)(title, () => {
    // Removes what the runs wrote (each run uses names of its own, so the stores run at once).
    afterAll(() => backend.cleanup());
    const withStorage = async (use: (storage: Storage) => Promise<void>) => {
      const storage = backend.create({ queues: { maxAttempts: MAX_ATTEMPTS } });
      try {
        await use(storage);
      } finally {
        await storage.close();
      }
    };
    it.concurrent('kv: set (ttl, nx, xx), get, getMany, delete, exists, expire, ttl, incr', () =>
      withStorage((storage) => check(storage, kvCommand, runKv)));
    it.concurrent('sessions: create, get, keepAlive, end, byCluster, byCorrelation, activeClusters, isClusterActive', () =>
      withStorage((storage) => check(storage, sessionCommand, runSessions)));
    for (const { title, commands } of queueRegressions) {
      it.concurrent(`queues regression: ${title}`, () =>
        withStorage((storage) => runQueue(storage, `${name('model')}:q`, commands)));
    }
    it.concurrent('queues: send (delay, dedup), receive, ack, nack, extend, stats, dead letters', () =>
      withStorage((storage) =>
        check(storage, queueCommand, (s, prefix, commands) => runQueue(s, `${prefix}q`, commands)),
      ));
  });
}
