/**
 * Reads this project's Redis layout (`lib/storage/redis/keys.ts`, docs/storage-layout.md) as
 * migration records: one reader per store under `redis-source/`, composed here. Keys are listed
 * with SCAN (on every primary of a cluster), never KEYS, and read with pipelines: one round
 * trip per batch. A batch's times are made absolute with the server's TIME, read in the same
 * pipeline, so a remaining TTL becomes the same `expires_at` whatever the client's clock says.
 *
 * Reserved items of the hybrid backend (kv keys `__kst_hybrid:…`, the journal queues) are
 * backend-local bookkeeping and are not migrated.
 */
import type { RedisClient } from '../storage/redis/client.js';
import type { StoreName } from './records.js';
import { globEscape } from './redis-scan.js';
import { connectionsReader } from './redis-source/connections.js';
import type { RedisReadContext, StoreReader } from './redis-source/context.js';
import { kvReader } from './redis-source/kv.js';
import { dedupReader, queuesReader, removeDedup, removeMessages } from './redis-source/queues.js';
import { sessionsReader } from './redis-source/sessions.js';
import { auditReader, eventsReader } from './redis-source/streams.js';
import { tokensReader } from './redis-source/tokens.js';
import { DataMigrationInputError, type RecordSource } from './source.js';

export { compareUtf8 } from './redis-source/context.js';
export { globEscape };

export interface RedisSourceOptions {
  client: RedisClient;
  /** The storage's `keyPrefix` (default `kubently:`). */
  prefix: string;
  /** For messages: the URL without credentials. */
  name: string;
}

type Readers = { [S in StoreName]: StoreReader<S> };

export function createRedisSource(options: RedisSourceOptions): RecordSource {
  const ctx: RedisReadContext = { client: options.client, prefix: options.prefix };
  const readers: Readers = {
    kv: kvReader(ctx),
    sessions: sessionsReader(ctx),
    tokens: tokensReader(ctx),
    connections: connectionsReader(ctx),
    queues: queuesReader(ctx),
    dedup: dedupReader(ctx),
    events: eventsReader(ctx),
    audit: auditReader(ctx),
  };
  const reader = <S extends StoreName>(store: S): StoreReader<S> => readers[store];

  return {
    name: options.name,
    layout: 'kubently-storage',
    stores: ['kv', 'sessions', 'tokens', 'connections', 'queues', 'dedup', 'events', 'audit'],
    mutable: (store) =>
      store === 'kv' || store === 'sessions' || store === 'tokens' || store === 'connections',
    estimate: (store) => reader(store).estimate(),

    async *batches(store, cursor, batchSize) {
      if (cursor === 'done') return;
      yield* reader(store).batches(cursor, batchSize);
    },

    async fetch(store, ids) {
      if (ids.length === 0) return [];
      return reader(store).fetch(ids);
    },

    remove(store, ids) {
      if (store === 'queues') return removeMessages(ctx, ids);
      if (store === 'dedup') return removeDedup(ctx, ids);
      return Promise.reject(new Error(`${store}: items are not moved, only copied`));
    },

    async check() {
      try {
        await options.client.ping();
      } catch (error) {
        throw new DataMigrationInputError(
          `cannot reach the source Redis at ${options.name}: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      }
    },

    async close() {
      // The caller owns the client.
    },
  };
}
