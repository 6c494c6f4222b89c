/**
 * A long poll (`receive` with `wait`) is a contract: it returns within its wait. When Redis
 * restarts (or the blocking connection drops) and the client is back before its first
 * reconnect attempt fails, the BLPOP in flight is not resent and no reply will ever come for it:
 * the receive must still return — empty or with a message — long before the blocking
 * connection's 30 s command timeout would have ended it. Against a private redis-server.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createStorage, type Storage } from '../../lib/storage/index.js';
import { BLOCKING_COMMAND_TIMEOUT_MS } from '../../lib/storage/redis/index.js';
import { missingRedisBinaries, PrivateRedis } from '../support/servers/redis-server.js';

const missing = missingRedisBinaries(['redis-server']);
if (missing) console.warn(`\n⚠ test/redis/long-poll-restart SKIPPED: ${missing}\n`);

/** The wait each receive asks for; far below the command timeout, so a hang cannot pass for a wait. */
const WAIT_SECONDS = 3;

describe.skipIf(missing !== undefined)(
  `a waiting receive across a Redis restart${missing ? ` — SKIPPED: ${missing}` : ''}`,
  () => {
    let server: PrivateRedis;
    beforeAll(async () => {
      server = await PrivateRedis.start();
    });
    afterAll(async () => {
      await server?.stop();
    });

    const storageOn = () => createStorage({ backend: 'redis', keyPrefix: 'lp:', redis: { url: server.url } });

    /** Resolves once `n` long polls are blocked on their BLPOP. */
    async function blocked(storage: Storage, n: number): Promise<void> {
      await vi.waitFor(
        () => expect(storage.pools().redis?.inUse ?? 0, 'long polls blocked').toBeGreaterThanOrEqual(n),
        { timeout: 10_000, interval: 10 },
      );
      // The BLPOPs are written; give the server a moment to have them blocking.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number }> {
      const started = performance.now();
      const value = await work;
      return { value, ms: performance.now() - started };
    }

    it(
      'returns before the command timeout when the blocking connection drops and comes straight back',
      async () => {
        const storage = storageOn();
        const admin = server.admin();
        try {
          // Blocking connections opened and warm.
          await storage.queues.receive('q1', { wait: 0.05 });
          const waiting = [1, 2, 3].map(() => timed(storage.queues.receive('q1', { wait: WAIT_SECONDS })));
          await blocked(storage, 3);
          // Redis stays up: every dropped client reconnects at its first attempt (the case that hung).
          const killed = await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
          expect(Number(killed)).toBeGreaterThanOrEqual(3);
          for (const { value, ms } of await Promise.all(waiting)) {
            expect(value).toEqual([]);
            expect(ms).toBeLessThan(BLOCKING_COMMAND_TIMEOUT_MS);
          }
        } finally {
          admin.disconnect();
          await storage.close();
        }
      },
      2 * BLOCKING_COMMAND_TIMEOUT_MS,
    );

    it(
      'returns before the command timeout when Redis is killed and restarted, and still gets a message sent after',
      async () => {
        const storage = storageOn();
        try {
          await storage.queues.receive('q2', { wait: 0.05 });
          const waiting = [1, 2, 3].map(() => timed(storage.queues.receive('q2', { wait: WAIT_SECONDS })));
          await blocked(storage, 3);
          await server.restart();
          // Sent once the server is back: one of the waiting receives takes it (the others time out).
          await storage.queues.send('q2', { after: 'restart' });
          const results = await Promise.all(waiting);
          for (const { ms } of results) expect(ms).toBeLessThan(BLOCKING_COMMAND_TIMEOUT_MS);
          const delivered = results.flatMap(({ value }) => value.map((m) => m.payload));
          expect(delivered).toEqual([{ after: 'restart' }]);
        } finally {
          await storage.close();
        }
      },
      2 * BLOCKING_COMMAND_TIMEOUT_MS,
    );
  },
);
