/**
 * Queue messages and dedup ids. Queues are found by their `seq` keys and read in name order,
 * each in FIFO (sequence) order, so a cursor `[queue, last sequence]` resumes exactly. Dedup ids
 * are one SCAN over every queue's `dd:<id>` keys. The hybrid's journal queues are not migrated.
 */
import type { Redis } from 'ioredis';
import { queueHead, queueKeys, splitTaggedKey, TAGGED_TAILS } from '../../storage/redis/keys.js';
import { dataMigrationRemoveMessages as REMOVE_MESSAGES } from '../../storage/redis/scripts.generated.js';
import { type DedupRecord, type QueueMessageRecord, RESERVED_QUEUES, splitPairId } from '../records.js';
import { globEscape } from '../redis-scan.js';
import { namedCursor } from '../source.js';
import {
  compareUtf8,
  pipelineOn,
  present,
  type ReadResult,
  type RedisReadContext,
  type StoreReader,
  scanned,
  taggedNames,
} from './context.js';
import { exec, serverMs, text, texts } from './replies.js';

/** Where a listed message was: the set it is in (delayed is ready later), its score and sequence. */
interface ListedMessage {
  id: string;
  state: 'ready' | 'delayed' | 'leased' | 'dead';
  score: number;
  seq: number;
}

/** The fields of a message hash `m:<id>`: payload, sequence, enqueued ms, attempts. */
const MESSAGE_FIELDS = ['p', 's', 'e', 'a'] as const;

/** The names of the queues to migrate, in byte order. */
async function queueNames(ctx: RedisReadContext): Promise<string[]> {
  const names = await taggedNames(ctx, queueHead(ctx.prefix), TAGGED_TAILS.queueSeq);
  return names.filter((name) => !RESERVED_QUEUES.has(name));
}

/** Every message id of a queue with its state and that state's score, in FIFO (seq) order. */
async function listMessages(ctx: RedisReadContext, queue: string): Promise<ListedMessage[]> {
  const keys = queueKeys(ctx.prefix, queue);
  const sets = [
    [keys.ready, 'ready'],
    [keys.delayed, 'delayed'],
    [keys.inflight, 'leased'],
    [keys.dead, 'dead'],
  ] as const;
  const listed: ListedMessage[] = [];
  const CHUNK = 10_000;
  for (const [key, state] of sets) {
    for (let start = 0; ; start += CHUNK) {
      const flat = await ctx.client.zrange(key, start, start + CHUNK - 1, 'WITHSCORES');
      for (let i = 0; i + 1 < flat.length; i += 2)
        listed.push({ id: flat[i]!, state, score: Number(flat[i + 1]), seq: 0 });
      if (flat.length < CHUNK * 2) break;
    }
  }
  // The sequence of each message: ready's score is it already; the others' is in their hash.
  const needSeq = listed.filter((m) => m.state !== 'ready');
  for (let i = 0; i < needSeq.length; i += 1000) {
    const chunk = needSeq.slice(i, i + 1000);
    const pipeline = pipelineOn(ctx);
    for (const m of chunk) pipeline.hget(keys.message(m.id), 's');
    const replies = await exec(pipeline);
    chunk.forEach((m, j) => {
      const seq = text(replies[j], 'HGET');
      m.seq = seq === null ? Number.NaN : Number(seq);
    });
  }
  for (const m of listed) if (m.state === 'ready') m.seq = m.score;
  // A message listed twice (moved between sets while listed) keeps its later listing.
  const byId = new Map(listed.filter((m) => !Number.isNaN(m.seq)).map((m) => [m.id, m]));
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

/** A message hash's fields and where it is → its record; undefined when it is gone (acked). */
function toMessage(
  queue: string,
  id: string,
  fields: (string | null)[],
  where: { state: 'ready' | 'leased' | 'dead'; visibleAtMs?: number; diedAtMs: number | null },
): QueueMessageRecord | undefined {
  const [payload, seq, enqueued, attempts] = fields;
  if (payload == null) return undefined;
  return {
    queue,
    id,
    payload,
    state: where.state,
    attempts: Number(attempts ?? 0),
    enqueuedAtMs: Number(enqueued),
    visibleAtMs: where.visibleAtMs ?? Number(enqueued),
    diedAtMs: where.diedAtMs,
    seq: Number(seq),
  };
}

async function readListed(
  ctx: RedisReadContext,
  queue: string,
  listed: ListedMessage[],
): Promise<(QueueMessageRecord | undefined)[]> {
  const keys = queueKeys(ctx.prefix, queue);
  const pipeline = pipelineOn(ctx);
  for (const m of listed) pipeline.hmget(keys.message(m.id), ...MESSAGE_FIELDS);
  const replies = await exec(pipeline);
  return listed.map((m, i) =>
    toMessage(queue, m.id, texts(replies[i], 'HMGET'), {
      state: m.state === 'delayed' ? 'ready' : m.state,
      visibleAtMs: m.state === 'delayed' || m.state === 'leased' ? m.score : undefined,
      diedAtMs: m.state === 'dead' ? m.score : null,
    }),
  );
}

/** Where each message of `ids` (`pairId(queue, id)`) is now, or undefined when it is gone. */
async function fetchMessages(
  ctx: RedisReadContext,
  ids: string[],
): Promise<(QueueMessageRecord | undefined)[]> {
  const pipeline = pipelineOn(ctx);
  for (const pid of ids) {
    const [queue, id] = splitPairId(pid);
    const keys = queueKeys(ctx.prefix, queue);
    pipeline
      .hmget(keys.message(id), ...MESSAGE_FIELDS)
      .zscore(keys.ready, id)
      .zscore(keys.delayed, id)
      .zscore(keys.inflight, id)
      .zscore(keys.dead, id);
  }
  const replies = await exec(pipeline);
  return ids.map((pid, i) => {
    const [queue, id] = splitPairId(pid);
    const [, delayed, inflight, dead] = replies
      .slice(i * 5 + 1, i * 5 + 5)
      .map((reply) => text(reply, 'ZSCORE'));
    return toMessage(queue, id, texts(replies[i * 5], 'HMGET'), {
      state: dead != null ? 'dead' : inflight != null ? 'leased' : 'ready',
      visibleAtMs: inflight != null ? Number(inflight) : delayed != null ? Number(delayed) : undefined,
      diedAtMs: dead != null ? Number(dead) : null,
    });
  });
}

/** Deletes moved messages (`copy --move`): one script per queue, a message leaves every set and its hash at once. */
export async function removeMessages(ctx: RedisReadContext, ids: string[]): Promise<number> {
  let removed = 0;
  for (const [queue, list] of byQueue(ids)) {
    const keys = queueKeys(ctx.prefix, queue);
    const reply = await ctx.client.eval(
      REMOVE_MESSAGES,
      4,
      keys.ready,
      keys.delayed,
      keys.inflight,
      keys.dead,
      keys.base,
      ...list,
    );
    removed += Number(reply);
  }
  return removed;
}

/** Deletes moved dedup ids (`copy --move`). */
export async function removeDedup(ctx: RedisReadContext, ids: string[]): Promise<number> {
  let removed = 0;
  for (const [queue, list] of byQueue(ids)) {
    const keys = queueKeys(ctx.prefix, queue);
    removed += await ctx.client.del(...list.map((id) => keys.dedup(id)));
  }
  return removed;
}

/** `pairId(queue, id)`s grouped by queue. */
function byQueue(ids: string[]): Map<string, string[]> {
  const grouped = new Map<string, string[]>();
  for (const pid of ids) {
    const [queue, id] = splitPairId(pid);
    grouped.set(queue, [...(grouped.get(queue) ?? []), id]);
  }
  return grouped;
}

export function queuesReader(ctx: RedisReadContext): StoreReader<'queues'> {
  return {
    async estimate() {
      let total = 0;
      for (const queue of await queueNames(ctx)) {
        const keys = queueKeys(ctx.prefix, queue);
        const pipeline = pipelineOn(ctx)
          .zcard(keys.ready)
          .zcard(keys.delayed)
          .zcard(keys.inflight)
          .zcard(keys.dead);
        for (const count of await exec(pipeline)) total += Number(count);
      }
      return total;
    },

    async *batches(cursor, batchSize) {
      const [fromQueue, afterSeq] = namedCursor(cursor, ['', -1]);
      for (const queue of await queueNames(ctx)) {
        if (compareUtf8(queue, fromQueue) < 0) continue;
        const listed = (await listMessages(ctx, queue)).filter(
          (m) => queue !== fromQueue || m.seq > afterSeq,
        );
        for (let i = 0; i < listed.length; i += batchSize) {
          const chunk = listed.slice(i, i + batchSize);
          const found = await readListed(ctx, queue, chunk);
          yield {
            ...present(found, 'acked meanwhile'),
            cursor: [queue, chunk[chunk.length - 1]!.seq],
            scanned: chunk.length,
          };
        }
      }
      yield { records: [], cursor: 'done', scanned: 0 };
    },

    fetch: (ids) => fetchMessages(ctx, ids),
  };
}

/** Dedup keys of one SCAN step → records (the queue's name comes from the key's tag). */
async function readDedup(
  ctx: RedisReadContext,
  keys: string[],
  node: Redis,
): Promise<ReadResult<DedupRecord>> {
  const head = queueHead(ctx.prefix);
  const parsed = keys.flatMap((key) => {
    const parts = splitTaggedKey(head, key);
    if (!parts?.tail.startsWith(TAGGED_TAILS.dedup) || RESERVED_QUEUES.has(parts.name)) return [];
    return [{ key, queue: parts.name, dedupId: parts.tail.slice(TAGGED_TAILS.dedup.length) }];
  });
  const pipeline = pipelineOn(ctx, node).time();
  for (const { key } of parsed) pipeline.get(key).pttl(key);
  const [time, ...replies] = await exec(pipeline);
  const now = serverMs(time);
  const records: DedupRecord[] = [];
  parsed.forEach(({ queue, dedupId }, i) => {
    const messageId = text(replies[i * 2], 'GET');
    const pttl = Number(replies[i * 2 + 1]);
    if (messageId !== null && pttl >= 0) records.push({ queue, dedupId, messageId, expiresAtMs: now + pttl });
  });
  return { records, skipped: {} };
}

export function dedupReader(ctx: RedisReadContext): StoreReader<'dedup'> {
  const head = queueHead(ctx.prefix);
  return {
    estimate: async () => undefined,

    batches: (cursor, batchSize) =>
      scanned<'dedup'>(
        ctx,
        `${globEscape(head)}*}:${globEscape(TAGGED_TAILS.dedup)}*`,
        cursor,
        batchSize,
        (keys, node) => readDedup(ctx, keys, node),
      ),

    async fetch(ids) {
      const found: (DedupRecord | undefined)[] = [];
      for (const pid of ids) {
        const [queue, dedupId] = splitPairId(pid);
        const key = queueKeys(ctx.prefix, queue).dedup(dedupId);
        const [time, value, pttlReply] = await exec(pipelineOn(ctx).time().get(key).pttl(key));
        const messageId = text(value, 'GET');
        const pttl = Number(pttlReply);
        found.push(
          messageId === null || pttl < 0
            ? undefined
            : { queue, dedupId, messageId, expiresAtMs: serverMs(time) + pttl },
        );
      }
      return found;
    },
  };
}
