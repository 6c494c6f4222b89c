/**
 * What every store reader of this project's Redis layout shares: the client, the key prefix,
 * the SCAN walk, and the shape of a reader (`StoreReader`), which `redis-source.ts` composes
 * into a `RecordSource`.
 */
import type { Redis } from 'ioredis';
import type { RedisClient } from '../../storage/redis/client.js';
import { splitTaggedKey } from '../../storage/redis/keys.js';
import type { RecordOf, StoreName } from '../records.js';
import { globEscape, scanStep } from '../redis-scan.js';
import type { Cursor, SourceBatch } from '../source.js';

export type { StoreReader } from '../source.js';

import type { Pipeline } from './replies.js';

export interface RedisReadContext {
  readonly client: RedisClient;
  /** The storage's `keyPrefix`. */
  readonly prefix: string;
}

/** A pipeline for keys of one node (SCAN answered them from it) or of one hash tag. */
export function pipelineOn(ctx: RedisReadContext, node?: Redis): Pipeline {
  return (node ?? (ctx.client as Redis)).pipeline();
}

/** What a batch read from listed keys found: its records and the items it skipped, by reason. */
export interface ReadResult<R> {
  records: R[];
  skipped: Record<string, number>;
}

/** A SCAN-walked store: each step's keys (deduplicated: SCAN may repeat one) → records. */
export async function* scanned<S extends StoreName>(
  ctx: RedisReadContext,
  pattern: string,
  cursor: Cursor | undefined,
  batchSize: number,
  read: (keys: string[], node: Redis) => Promise<ReadResult<RecordOf[S]>>,
): AsyncIterable<SourceBatch<S>> {
  let position = cursor;
  for (;;) {
    const { keys, node, next } = await scanStep(ctx.client, pattern, position, batchSize);
    const unique = [...new Set(keys)];
    const { records, skipped } = unique.length ? await read(unique, node) : { records: [], skipped: {} };
    position = next ?? 'done';
    yield { records, cursor: position, scanned: unique.length, skipped };
    if (next === null) return;
  }
}

/** How many keys start with `head` (a full SCAN: for estimates). */
export async function countKeys(ctx: RedisReadContext, head: string): Promise<number> {
  let total = 0;
  let cursor: Cursor | undefined;
  for (;;) {
    const { keys, next } = await scanStep(ctx.client, `${globEscape(head)}*`, cursor, 5000);
    total += keys.length;
    if (next === null) return total;
    cursor = next;
  }
}

/**
 * The names of the queues or channels (`head`: `queueHead` or `eventHead`) that have a key with
 * `tail` (one per name), in byte order.
 */
export async function taggedNames(ctx: RedisReadContext, head: string, tail: string): Promise<string[]> {
  const names = new Set<string>();
  let cursor: Cursor | undefined;
  for (;;) {
    const { keys, next } = await scanStep(
      ctx.client,
      `${globEscape(head)}*}:${globEscape(tail)}`,
      cursor,
      1000,
    );
    for (const key of keys) {
      const parts = splitTaggedKey(head, key);
      if (parts?.tail === tail) names.add(parts.name);
    }
    if (next === null) return [...names].sort(compareUtf8);
    cursor = next;
  }
}

/** The records that were found, and how many were not (under `reason`). */
export function present<R>(found: (R | undefined)[], reason: string): ReadResult<R> {
  const records = found.filter((r): r is R => r !== undefined);
  const missing = found.length - records.length;
  return { records, skipped: missing ? { [reason]: missing } : {} };
}

/** Byte order of UTF-8 strings (PostgreSQL's COLLATE "C"). */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
