/**
 * The backends the conformance suite runs on. Each entry says how to build a Storage, whether
 * the backend is reachable here, what it cannot do (capabilities), and how to remove what the
 * tests wrote.
 *
 * `CONFORMANCE_BACKENDS=memory,redis` narrows the run to the named backends.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { StorageConfigInput } from '../../lib/config/index.js';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';

/**
 * What a backend can do. Every toggle is true unless a backend truly cannot do the thing; a
 * test that needs a toggle which is off shows up as skipped with `[needs capability …]` in its
 * title, never disappears.
 */
export interface Capabilities {
  /** `events.subscribe` delivers live events (needs a long-lived connection: Redis pub/sub or Postgres LISTEN). */
  subscribe: boolean;
  /** `queues.receive({ wait })` long-polls and wakes up when a message is sent meanwhile. */
  longPoll: boolean;
  /** Many concurrent receivers on one queue get every message exactly once (a 2,000-message run). */
  concurrentReceivers: boolean;
}

export interface Backend {
  /** Shown in every test title: `conformance [name] > …`. */
  name: string;
  /** What `storage.backend` and `health().backend` answer. */
  kind: 'memory' | 'redis' | 'postgresql' | 'hybrid';
  capabilities: Capabilities;
  /** `undefined` when the backend can be used here, else why not (e.g. nothing listening at the URL). */
  available(): Promise<string | undefined>;
  /**
   * A new Storage. `overrides` is merged over the suite's config (e.g. `{ queues: { maxAttempts: 2 } }`).
   * Each Storage sees its own data where the backend allows it (a fresh Redis key prefix).
   */
  create(overrides?: StorageConfigInput): Storage;
  /** Deletes everything the storages created by `create` wrote. Does not close them. */
  cleanup(): Promise<void>;
}

const ALL: Capabilities = { subscribe: true, longPoll: true, concurrentReceivers: true };

function withBackend(
  overrides: StorageConfigInput | undefined,
  base: StorageConfigInput,
): StorageConfigInput {
  return { ...overrides, ...base, redis: { ...overrides?.redis, ...base.redis } };
}

export const memoryBackend: Backend = {
  name: 'memory',
  kind: 'memory',
  capabilities: { ...ALL },
  available: async () => undefined,
  create: (overrides) => createStorage({ ...overrides, backend: 'memory' }),
  // Memory storages vanish with the process.
  cleanup: async () => {},
};

export function redisBackend(url = process.env.REDIS_URL || 'redis://127.0.0.1:6379'): Backend {
  const prefixes: string[] = [];
  const run = randomBytes(4).toString('hex');
  return {
    name: 'redis',
    kind: 'redis',
    capabilities: { ...ALL },
    async available() {
      const client = new Redis(url, {
        lazyConnect: true,
        connectTimeout: 1500,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        retryStrategy: () => null,
      });
      // The socket error (ECONNREFUSED, ENOTFOUND…) says more than the "Connection is closed" that connect() rejects with.
      let socketError: Error | undefined;
      client.on('error', (error: Error) => {
        socketError ??= error;
      });
      try {
        await client.connect();
        const pong = await client.ping();
        return pong === 'PONG' ? undefined : `Redis at ${url} answered PING with ${pong}`;
      } catch (error) {
        const cause = socketError ?? error;
        return `no Redis at ${url} (${cause instanceof Error ? cause.message : String(cause)})`;
      } finally {
        client.disconnect();
      }
    },
    create(overrides) {
      // A fresh prefix per Storage: runs (and tests that need a pristine store) never collide.
      const keyPrefix = `kst:test:${run}${randomBytes(4).toString('hex')}:`;
      prefixes.push(keyPrefix);
      return createStorage(withBackend(overrides, { backend: 'redis', keyPrefix, redis: { url } }));
    },
    async cleanup() {
      if (prefixes.length === 0) return;
      const client = new Redis(url, { maxRetriesPerRequest: 1 });
      try {
        for (const prefix of prefixes.splice(0)) {
          // Every key the backend writes starts with keyPrefix; the prefix is hex, so no glob escaping.
          let cursor = '0';
          do {
            const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
            cursor = next;
            if (keys.length > 0) await client.unlink(...keys);
          } while (cursor !== '0');
        }
      } finally {
        client.disconnect();
      }
    },
  };
}

// PostgreSQL variants go here (a later issue): one entry per driver behind the SQL seam —
// `pg` (DATABASE_URL), Neon (WebSocket Pool through the local proxy) and PGlite (embedded,
// always available) — each creating its own schema per `create()` and dropping it in `cleanup()`,
// with `subscribe: false` where LISTEN is unavailable.

/** Every backend the suite knows, in the order they run. */
export function allBackends(): Backend[] {
  return [memoryBackend, redisBackend()];
}

/** The backends selected by `CONFORMANCE_BACKENDS` (default: all). */
export function selectedBackends(): Backend[] {
  const all = allBackends();
  const wanted = process.env.CONFORMANCE_BACKENDS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!wanted || wanted.length === 0) return all;
  const unknown = wanted.filter((name) => !all.some((b) => b.name === name));
  if (unknown.length > 0) {
    throw new Error(
      `CONFORMANCE_BACKENDS names unknown backends: ${unknown.join(', ')} (known: ${all.map((b) => b.name).join(', ')})`,
    );
  }
  return all.filter((b) => wanted.includes(b.name));
}

/** How to get the backend running, appended to a skip reason. */
export function installHint(backend: Backend): string {
  switch (backend.kind) {
    case 'redis':
      return 'install redis-server or set REDIS_URL';
    case 'postgresql':
      return 'set DATABASE_URL or start local Postgres';
    default:
      return 'see test/support/backends.ts';
  }
}
