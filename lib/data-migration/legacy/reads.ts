/**
 * Reading the legacy database: what the per-store readers share. SCAN walks (with a cursor that
 * can cross several patterns), string reads with their absolute expiry on the server's clock,
 * set members, existence checks and list ranges. Replies are decoded here: a command that
 * failed stays an error (a key of the wrong type is a reason to skip, not a crash).
 */
import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from '../../storage/redis/client.js';
import type { RecordOf, StoreName } from '../records.js';
import { scanStep } from '../redis-scan.js';
import { text as replyText, texts as replyTexts, serverMs } from '../redis-source/replies.js';
import type { Cursor, SourceBatch } from '../source.js';
import { add, isWrongType } from './layout.js';

type Pipeline = ReturnType<Redis['pipeline']>;
type Reply = [Error | null, unknown];

export interface LegacyReadContext {
  readonly client: RedisClient;
  /** In front of every legacy key name ('' upstream). */
  readonly prefix: string;
  /** When imported tokens were created (read once per source). */
  readonly importedAtMs: number;
}

/** A key's name without the prefix. */
export const unprefixed = (ctx: LegacyReadContext, key: string): string => key.slice(ctx.prefix.length);

const pipelineOn = (ctx: LegacyReadContext, node?: Redis): Pipeline =>
  (node ?? (ctx.client as Redis)).pipeline();

/** A pipeline's replies, each with its own error (the caller decides which errors are fatal). */
async function execAll(pipeline: Pipeline): Promise<Reply[]> {
  const results = await pipeline.exec();
  if (!results) throw new Error('Connection is closed.');
  return results;
}

/** A reply's value; its error thrown. */
function replyValue([error, value]: Reply): unknown {
  if (error) throw error;
  return value;
}

/** A string key as read: its text and absolute expiry, or why there is none. */
export type StringRead =
  | { state: 'live'; value: string; expiresAtMs: number | null; now: number }
  | { state: 'gone' }
  | { state: 'wrongType' };

/** GET and PTTL of string keys with the server's time: on `node` (SCAN answered from there) or by key. */
export async function readStrings(
  ctx: LegacyReadContext,
  keys: string[],
  node?: Redis,
): Promise<StringRead[]> {
  if (keys.length === 0) return [];
  if (node === undefined && ctx.client instanceof Cluster && keys.length > 1) {
    return (await Promise.all(keys.map((key) => readStrings(ctx, [key])))).flat();
  }
  const pipeline = pipelineOn(ctx, node).time();
  for (const key of keys) pipeline.get(key).pttl(key);
  const [time, ...replies] = await execAll(pipeline);
  const now = serverMs(replyValue(time!));
  return keys.map((_, i): StringRead => {
    const [getError, value] = replies[i * 2]!;
    if (getError) {
      if (isWrongType(getError)) return { state: 'wrongType' };
      throw getError;
    }
    const left = Number(replyValue(replies[i * 2 + 1]!));
    const text = replyText(value, 'GET');
    if (text === null || left === -2) return { state: 'gone' };
    return { state: 'live', value: text, expiresAtMs: left < 0 ? null : now + left, now };
  });
}

/** Whether each key exists. */
export async function existsMany(ctx: LegacyReadContext, keys: string[]): Promise<boolean[]> {
  const found: boolean[] = [];
  for (let i = 0; i < keys.length; i += 1000) {
    const chunk = keys.slice(i, i + 1000);
    if (ctx.client instanceof Cluster) {
      const client = ctx.client;
      found.push(...(await Promise.all(chunk.map(async (key) => (await client.exists(key)) > 0))));
      continue;
    }
    const pipeline = pipelineOn(ctx);
    for (const key of chunk) pipeline.exists(key);
    for (const reply of await execAll(pipeline)) found.push(Number(replyValue(reply)) > 0);
  }
  return found;
}

/** Every member of a set (SSCAN). */
export async function setMembers(ctx: LegacyReadContext, key: string): Promise<string[]> {
  const members = new Set<string>();
  let position = '0';
  do {
    const [next, page] = await ctx.client.sscan(key, position, 'COUNT', 1000);
    for (const member of page) members.add(member);
    position = next;
  } while (position !== '0');
  return [...members];
}

/** Every key matching `pattern` (glob over the prefixed name), for indexes and estimates. */
export async function allKeys(ctx: LegacyReadContext, pattern: string): Promise<string[]> {
  const found = new Set<string>();
  let cursor: Cursor | undefined;
  for (;;) {
    const { keys, next } = await scanStep(ctx.client, pattern, cursor, 1000);
    for (const key of keys) found.add(key);
    if (next === null) return [...found];
    cursor = next;
  }
}

/** How many keys match `pattern` and, without the prefix, are `wanted`. */
export async function countKeys(
  ctx: LegacyReadContext,
  pattern: string,
  wanted: (name: string) => boolean,
): Promise<number> {
  let total = 0;
  let cursor: Cursor | undefined;
  for (;;) {
    const { keys, next } = await scanStep(ctx.client, pattern, cursor, 5000);
    for (const key of keys) if (wanted(unprefixed(ctx, key))) total += 1;
    if (next === null) return total;
    cursor = next;
  }
}

/** Where a walk over several patterns stands: [pattern index, that pattern's SCAN cursor]. */
function walkCursor(cursor: Cursor | undefined): [number, Cursor | null] {
  if (cursor === undefined) return [0, null];
  if (Array.isArray(cursor) && cursor.length === 2 && typeof cursor[0] === 'number')
    return [cursor[0], cursor[1]!];
  throw new Error(`the checkpoint's position ${JSON.stringify(cursor)} is not one of this store`);
}

/**
 * SCAN over several patterns in turn, `batchSize` keys at a time: the cursor is
 * [pattern index, node cursor] ('done' at the end). `last` adds skipped counts to the last batch.
 */
export async function* walk<S extends StoreName>(
  ctx: LegacyReadContext,
  patterns: string[],
  cursor: Cursor | undefined,
  batchSize: number,
  read: (keys: string[], node: Redis) => Promise<{ records: RecordOf[S][]; skipped: Record<string, number> }>,
  last?: () => Promise<Record<string, number>>,
): AsyncIterable<SourceBatch<S>> {
  let [pattern, position] = walkCursor(cursor);
  for (;;) {
    const { keys, node, next } = await scanStep(
      ctx.client,
      patterns[pattern]!,
      position ?? undefined,
      batchSize,
    );
    const unique = [...new Set(keys)];
    const { records, skipped } = unique.length ? await read(unique, node) : { records: [], skipped: {} };
    if (next === null) {
      pattern += 1;
      position = null;
    } else position = next;
    const done = pattern >= patterns.length;
    if (done && last) for (const [reason, count] of Object.entries(await last())) add(skipped, reason, count);
    yield { records, cursor: done ? 'done' : [pattern, position], scanned: unique.length, skipped };
    if (done) return;
  }
}

/**
 * Entries of a list at positions from its tail (1 = oldest) `from`..`to`, oldest first, and
 * the list's length, read together.
 */
export async function listRange(
  ctx: LegacyReadContext,
  key: string,
  from: number,
  to: number,
): Promise<{ entries: string[]; length: number }> {
  const [length, range] = (await execAll(pipelineOn(ctx).llen(key).lrange(key, -to, -from))).map(replyValue);
  const entries = replyTexts(range, 'LRANGE').map((entry) => entry ?? '');
  return { entries: entries.reverse(), length: Number(length) };
}

/** Items at positions from a list's tail (1 = oldest), and the list's length. */
export async function listItems(
  ctx: LegacyReadContext,
  key: string,
  positions: number[],
): Promise<{ items: (string | null)[]; length: number }> {
  const pipeline = pipelineOn(ctx).llen(key);
  for (const position of positions) pipeline.lindex(key, -position);
  const [length, ...items] = (await execAll(pipeline)).map(replyValue);
  return { items: items.map((item) => replyText(item, 'LINDEX')), length: Number(length) };
}
