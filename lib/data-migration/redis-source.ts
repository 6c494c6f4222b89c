/**
 * Reads this project's Redis layout (`lib/storage/redis/keys.ts`, docs/storage-layout.md) as migration records. Keys are listed with SCAN (on every primary of a
 * cluster), never KEYS, and read with pipelines: one round trip per batch. A batch's times are
 * made absolute with the server's TIME, read in the same pipeline, so a remaining TTL becomes
 * the same `expires_at` whatever the client's clock says.
 *
 * Reserved items of the hybrid backend (kv keys `__kst_hybrid:…`, the journal queues) are
 * backend-local bookkeeping and are not migrated.
 */
import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from '../storage/redis/client.js';
import {
  auditKeys,
  connectionKeys,
  eventHead,
  eventKeys,
  kvKey,
  queueHead,
  queueKeys,
  SESSION_FIELDS,
  sessionKeys,
  tokenKeys,
  untag,
} from '../storage/redis/keys.js';
import {
  dataMigrationReadHashes as READ_HASHES,
  dataMigrationReadKv as READ_KV,
  dataMigrationRemoveMessages as REMOVE_MESSAGES,
} from '../storage/redis/scripts.generated.js';
import {
  type AuditRecord,
  type ConnectionRecord,
  type DedupRecord,
  type EventRecord,
  type KvRecord,
  type QueueMessageRecord,
  RESERVED_KV_PREFIX,
  RESERVED_QUEUES,
  type RecordOf,
  type SessionRecord,
  type StoreName,
  splitPairId,
  type TokenRecord,
} from './records.js';
import { globEscape, scanStep as rawScanStep } from './redis-scan.js';
import { type Cursor, DataMigrationInputError, type RecordSource, type SourceBatch } from './source.js';

export { globEscape };

export interface RedisSourceOptions {
  client: RedisClient;
  /** The storage's `keyPrefix` (default `kubently:`). */
  prefix: string;
  /** For messages: the URL without credentials. */
  name: string;
}

type Pipeline = ReturnType<Redis['pipeline']>;

const nullable = (text: string | null | undefined) => (text === '' || text == null ? null : text);

/** Runs a pipeline and answers its replies; the first failed command fails it all. */
async function exec(pipeline: Pipeline): Promise<unknown[]> {
  const results = await pipeline.exec();
  if (!results) throw new Error('Connection is closed.');
  return results.map(([error, reply]) => {
    if (error) throw error;
    return reply;
  });
}

function serverMs(time: unknown): number {
  const [seconds, micros] = time as [string, string];
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

export function createRedisSource(options: RedisSourceOptions): RecordSource {
  const { client, prefix } = options;
  const p = prefix;
  /** A pipeline for keys of one node (SCAN answered them) or of one hash tag. */
  const pipelineOn = (node: Redis | undefined): Pipeline =>
    (node ?? (client as Redis)).pipeline() as Pipeline;

  const scanStep = (pattern: string, cursor: Cursor | undefined, count: number) =>
    rawScanStep(client, pattern, cursor, count);

  /** SCAN-walked stores: batches of keys → records. */
  async function* scanned<S extends StoreName>(
    pattern: string,
    cursor: Cursor | undefined,
    batchSize: number,
    read: (
      keys: string[],
      node: Redis,
    ) => Promise<{ records: RecordOf[S][]; skipped: Record<string, number> }>,
  ): AsyncIterable<SourceBatch<S>> {
    let position = cursor;
    for (;;) {
      const { keys, node, next } = await scanStep(pattern, position, batchSize);
      const unique = [...new Set(keys)];
      const { records, skipped } = unique.length ? await read(unique, node) : { records: [], skipped: {} };
      position = next ?? 'done';
      yield { records, cursor: position, scanned: unique.length, skipped };
      if (next === null) return;
    }
  }

  // -- kv -------------------------------------------------------------------------------
  const kvBase = kvKey(p, '');
  async function readKv(
    keys: string[],
    node?: Redis,
  ): Promise<{ records: (KvRecord | undefined)[]; skipped: Record<string, number> }> {
    let replies: unknown[];
    if (client instanceof Cluster) {
      // Keys of one node but many slots: a script would be refused (CROSSSLOT); a pipeline is not.
      const pipeline = pipelineOn(node).time();
      for (const key of keys) pipeline.get(key).pttl(key);
      replies = await exec(pipeline);
    } else {
      // One script call instead of two commands per key: the client's own per-command work is
      // what bounds a pipelined read of small values.
      const [seconds, micros, ...rest] = (await client.eval(READ_KV, keys.length, ...keys)) as unknown[];
      replies = [[seconds, micros], ...rest];
    }
    const now = serverMs(replies[0]);
    const records: (KvRecord | undefined)[] = [];
    const skipped: Record<string, number> = {};
    keys.forEach((key, i) => {
      const value = replies[1 + i * 2] as string | null;
      const pttl = Number(replies[2 + i * 2]);
      if (value === null || pttl === -2) {
        records.push(undefined);
        skipped.expired = (skipped.expired ?? 0) + 1;
        return;
      }
      records.push({ key: key.slice(kvBase.length), value, expiresAtMs: pttl < 0 ? null : now + pttl });
    });
    return { records, skipped };
  }

  // -- sessions -------------------------------------------------------------------------
  const sessions = sessionKeys(p);
  async function readSessions(
    ids: string[],
  ): Promise<{ records: (SessionRecord | undefined)[]; now: number }> {
    // Every session key shares the `{s}` tag: one script reads the batch, on a cluster too.
    const [seconds, micros, ...flat] = (await client.eval(
      READ_HASHES,
      ids.length,
      ...ids.map((id) => sessions.session(id)),
      ...SESSION_FIELDS,
    )) as (string | null)[];
    const now = serverMs([seconds, micros]);
    const n = SESSION_FIELDS.length;
    const records = ids.map((id, i): SessionRecord | undefined => {
      const f = flat.slice(i * n, i * n + n);
      const [cluster, user, corr, svc, data, created, last, exp, ttl] = f;
      if (cluster == null || exp == null || Number(exp) <= now) return undefined;
      return {
        sessionId: id,
        clusterId: cluster,
        userId: nullable(user),
        correlationId: nullable(corr),
        serviceIdentity: nullable(svc),
        data: data ?? '{}',
        ttlMs: Number(ttl) > 0 ? Number(ttl) : Math.max(1, Number(exp) - Number(last)),
        createdAtMs: Number(created),
        lastActivityMs: Number(last),
        expiresAtMs: Number(exp),
      };
    });
    return { records, now };
  }

  // -- tokens ---------------------------------------------------------------------------
  const tokens = tokenKeys(p);
  async function readTokens(pairs: [string, string][]): Promise<(TokenRecord | undefined)[]> {
    const pipeline = pipelineOn(undefined).time();
    for (const [, hash] of pairs) pipeline.get(tokens.byHash(hash));
    const replies = await exec(pipeline);
    const now = serverMs(replies[0]);
    return pairs.map(([id], i) => {
      const text = replies[1 + i] as string | null;
      if (text === null) return undefined;
      const t = JSON.parse(text) as {
        id: string;
        hash: string;
        identity: string;
        scopes: string[];
        resources: string[];
        createdAt: string;
        expiresAt: string | null;
        issuerId?: string | null;
      };
      const expiresAtMs = t.expiresAt === null ? null : Date.parse(t.expiresAt);
      if (t.id !== id || (expiresAtMs !== null && expiresAtMs <= now)) return undefined;
      return {
        id: t.id,
        hash: t.hash,
        identity: t.identity,
        scopes: t.scopes,
        resources: t.resources,
        createdAtMs: Date.parse(t.createdAt),
        expiresAtMs,
        issuerId: t.issuerId ?? null,
      };
    });
  }

  // -- connections ----------------------------------------------------------------------
  const connections = connectionKeys(p);
  async function readConnections(ids: string[]): Promise<(ConnectionRecord | undefined)[]> {
    const pipeline = pipelineOn(undefined).time();
    for (const id of ids) {
      pipeline.hmget(
        connections.connection(id),
        'identity',
        'scopes',
        'resources',
        'connected',
        'exp',
        'token',
        'tokexp',
      );
      pipeline.smembers(connections.channels(id));
    }
    const replies = await exec(pipeline);
    const now = serverMs(replies[0]);
    return ids.map((id, i) => {
      const [identity, scopes, resources, connected, exp, tokenId, tokenExp] = replies[1 + i * 2] as (
        | string
        | null
      )[];
      const channels = replies[2 + i * 2] as string[];
      if (identity == null || exp == null || Number(exp) <= now) return undefined;
      return {
        connectionId: id,
        identity,
        scopes: JSON.parse(scopes ?? '[]') as string[],
        resources: JSON.parse(resources ?? '[]') as string[],
        tokenId: tokenId ?? '',
        tokenExpiresAtMs: tokenExp ? Number(tokenExp) : null,
        connectedAtMs: Number(connected),
        expiresAtMs: Number(exp),
        channels: [...channels].sort(compareUtf8),
      };
    });
  }

  // -- queues ---------------------------------------------------------------------------

  /** Names found by SCAN for keys `<prefix>{<kind>:<name>}:<suffix>`, sorted, reserved ones left out. */
  async function taggedNames(kind: 'q' | 'e', suffix: string): Promise<string[]> {
    const names = new Set<string>();
    const head = kind === 'q' ? queueHead(p) : eventHead(p);
    let cursor: Cursor | undefined;
    for (;;) {
      const { keys, next } = await scanStep(`${globEscape(head)}*}:${suffix}`, cursor, 1000);
      for (const key of keys) {
        const rest = key.slice(head.length);
        const end = rest.indexOf('}');
        if (end < 0 || rest.slice(end) !== `}:${suffix}`) continue;
        names.add(untag(rest.slice(0, end)));
      }
      if (next === null) break;
      cursor = next;
    }
    return [...names].filter((n) => kind !== 'q' || !RESERVED_QUEUES.has(n)).sort(compareUtf8);
  }

  /** Every message id of a queue with its state and that state's score, in FIFO (seq) order. */
  async function queueIndex(
    queue: string,
  ): Promise<{ id: string; state: 'ready' | 'delayed' | 'leased' | 'dead'; score: number; seq: number }[]> {
    const q = queueKeys(p, queue);
    const states = [
      ['ready', 'ready'],
      ['delayed', 'delayed'],
      ['inflight', 'leased'],
      ['dead', 'dead'],
    ] as const;
    const out: { id: string; state: 'ready' | 'delayed' | 'leased' | 'dead'; score: number; seq: number }[] =
      [];
    for (const [key, state] of states) {
      const CHUNK = 10_000;
      for (let start = 0; ; start += CHUNK) {
        const flat = await client.zrange(q[key], start, start + CHUNK - 1, 'WITHSCORES');
        for (let i = 0; i < flat.length; i += 2) {
          out.push({ id: flat[i]!, state, score: Number(flat[i + 1]), seq: 0 });
        }
        if (flat.length < CHUNK * 2) break;
      }
    }
    // The sequence of each message (ready's score is it already).
    const needSeq = out.filter((m) => m.state !== 'ready');
    for (let i = 0; i < needSeq.length; i += 1000) {
      const chunk = needSeq.slice(i, i + 1000);
      const pipeline = pipelineOn(undefined);
      for (const m of chunk) pipeline.hget(q.message(m.id), 's');
      const replies = await exec(pipeline);
      chunk.forEach((m, j) => {
        m.seq = replies[j] == null ? Number.NaN : Number(replies[j]);
      });
    }
    for (const m of out) if (m.state === 'ready') m.seq = m.score;
    // A message listed twice (moved between sets while listed) keeps its later listing.
    const byId = new Map(out.filter((m) => !Number.isNaN(m.seq)).map((m) => [m.id, m]));
    return [...byId.values()].sort((a, b) => a.seq - b.seq);
  }

  async function readMessages(
    queue: string,
    index: { id: string; state: 'ready' | 'delayed' | 'leased' | 'dead'; score: number; seq: number }[],
  ): Promise<(QueueMessageRecord | undefined)[]> {
    const q = queueKeys(p, queue);
    const pipeline = pipelineOn(undefined);
    for (const m of index) pipeline.hmget(q.message(m.id), 'p', 's', 'e', 'a');
    const replies = await exec(pipeline);
    return index.map((m, i) => {
      const [payload, seq, enqueued, attempts] = replies[i] as (string | null)[];
      if (payload == null) return undefined; // acked meanwhile
      const state = m.state === 'delayed' ? 'ready' : m.state;
      return {
        queue,
        id: m.id,
        payload,
        state,
        attempts: Number(attempts ?? 0),
        enqueuedAtMs: Number(enqueued),
        visibleAtMs: m.state === 'delayed' || m.state === 'leased' ? m.score : Number(enqueued),
        diedAtMs: m.state === 'dead' ? m.score : null,
        seq: Number(seq),
      };
    });
  }

  /** Where one message is now: its state set and score, or undefined when it is gone. */
  async function fetchMessages(ids: string[]): Promise<(QueueMessageRecord | undefined)[]> {
    const pipeline = pipelineOn(undefined);
    for (const pid of ids) {
      const [queue, id] = splitPairId(pid);
      const q = queueKeys(p, queue);
      pipeline
        .hmget(q.message(id), 'p', 's', 'e', 'a')
        .zscore(q.ready, id)
        .zscore(q.delayed, id)
        .zscore(q.inflight, id)
        .zscore(q.dead, id);
    }
    const replies = await exec(pipeline);
    return ids.map((pid, i) => {
      const [queue, id] = splitPairId(pid);
      const [payload, seq, enqueued, attempts] = replies[i * 5] as (string | null)[];
      if (payload == null) return undefined;
      const [ready, delayed, inflight, dead] = replies.slice(i * 5 + 1, i * 5 + 5) as (string | null)[];
      const state: 'ready' | 'leased' | 'dead' =
        dead != null
          ? 'dead'
          : inflight != null
            ? 'leased'
            : ready != null || delayed != null
              ? 'ready'
              : 'ready';
      return {
        queue,
        id,
        payload,
        state,
        attempts: Number(attempts ?? 0),
        enqueuedAtMs: Number(enqueued),
        visibleAtMs:
          inflight != null ? Number(inflight) : delayed != null ? Number(delayed) : Number(enqueued),
        diedAtMs: dead != null ? Number(dead) : null,
        seq: Number(seq),
      };
    });
  }

  // -- events ---------------------------------------------------------------------------
  const toEvent = (channel: string, lastId: number, [id, fields]: [string, string[]]): EventRecord => {
    const f: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
    return {
      channel,
      id: Number(id.slice(0, id.indexOf('-'))),
      message: f.m ?? 'null',
      publishedAtMs: Number(f.t),
      channelLastId: lastId,
    };
  };

  // -- audit ----------------------------------------------------------------------------
  const audit = auditKeys(p);
  const toAudit = ([id, fields]: [string, string[]]): AuditRecord => {
    const f: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
    return {
      sourceId: id,
      atMs: Number(id.slice(0, id.indexOf('-'))),
      identity: f.i ?? '',
      action: f.a ?? '',
      resource: nullable(f.r),
      correlationId: nullable(f.c),
      outcome: (f.o as AuditRecord['outcome']) ?? 'ok',
      details: nullable(f.d),
    };
  };

  const count = (records: unknown[]) => records.filter((r) => r === undefined).length;

  const source: RecordSource = {
    name: options.name,
    layout: 'kubently-storage',
    stores: ['kv', 'sessions', 'tokens', 'connections', 'queues', 'dedup', 'events', 'audit'],
    mutable: (store) =>
      store === 'kv' || store === 'sessions' || store === 'tokens' || store === 'connections',

    async estimate(store) {
      switch (store) {
        case 'kv': {
          let total = 0;
          let cursor: Cursor | undefined;
          for (;;) {
            const { keys, next } = await scanStep(`${globEscape(kvBase)}*`, cursor, 5000);
            total += keys.length;
            if (next === null) return total;
            cursor = next;
          }
        }
        case 'sessions': {
          let total = 0;
          let cursor: Cursor | undefined;
          for (;;) {
            const { keys, next } = await scanStep(`${globEscape(sessions.session(''))}*`, cursor, 5000);
            total += keys.length;
            if (next === null) return total;
            cursor = next;
          }
        }
        case 'tokens':
          return client.hlen(tokens.ids);
        case 'connections':
          return client.zcard(connections.conns);
        case 'queues': {
          let total = 0;
          for (const queue of await taggedNames('q', 'seq')) {
            const q = queueKeys(p, queue);
            const replies = await exec(
              pipelineOn(undefined).zcard(q.ready).zcard(q.delayed).zcard(q.inflight).zcard(q.dead),
            );
            total += replies.reduce<number>((sum, n) => sum + Number(n), 0);
          }
          return total;
        }
        case 'dedup':
          return undefined;
        case 'events': {
          let total = 0;
          for (const channel of await taggedNames('e', 'n'))
            total += await client.xlen(eventKeys(p, channel).stream);
          return total;
        }
        case 'audit':
          return client.xlen(audit.log);
      }
    },

    async *batches<S extends StoreName>(store: S, cursor: Cursor | undefined, batchSize: number) {
      if (cursor === 'done') return;
      type B = SourceBatch<S>;
      switch (store) {
        case 'kv': {
          for await (const batch of scanned<'kv'>(
            `${globEscape(kvBase)}*`,
            cursor,
            batchSize,
            async (keys, node) => {
              const wanted = keys.filter((k) => !k.startsWith(`${kvBase}${RESERVED_KV_PREFIX}`));
              const { records, skipped } = await readKv(wanted, node);
              if (wanted.length < keys.length) skipped.reserved = keys.length - wanted.length;
              return { records: records.filter((r): r is KvRecord => r !== undefined), skipped };
            },
          ))
            yield batch as unknown as B;
          return;
        }
        case 'sessions': {
          const head = sessions.session('');
          for await (const batch of scanned<'sessions'>(
            `${globEscape(head)}*`,
            cursor,
            batchSize,
            async (keys) => {
              const { records } = await readSessions(keys.map((k) => k.slice(head.length)));
              const expired = count(records);
              return {
                records: records.filter((r): r is SessionRecord => r !== undefined),
                skipped: (expired ? { expired } : {}) as Record<string, number>,
              };
            },
          ))
            yield batch as unknown as B;
          return;
        }
        case 'tokens': {
          let position = (cursor as string | undefined) ?? '0';
          for (;;) {
            const [next, flat] = await client.hscan(tokens.ids, position, 'COUNT', batchSize);
            const pairs: [string, string][] = [];
            const seen = new Set<string>();
            for (let i = 0; i < flat.length; i += 2) {
              if (seen.has(flat[i]!)) continue;
              seen.add(flat[i]!);
              pairs.push([flat[i]!, flat[i + 1]!]);
            }
            const records = pairs.length ? await readTokens(pairs) : [];
            const expired = count(records);
            position = next === '0' ? 'done' : next;
            yield {
              records: records.filter((r): r is TokenRecord => r !== undefined),
              cursor: position,
              scanned: pairs.length,
              skipped: expired ? { expired } : {},
            } as unknown as B;
            if (next === '0') return;
          }
        }
        case 'connections': {
          let position = (cursor as string | undefined) ?? '0';
          for (;;) {
            const [next, flat] = await client.zscan(connections.conns, position, 'COUNT', batchSize);
            const ids = [...new Set(flat.filter((_, i) => i % 2 === 0))];
            const records = ids.length ? await readConnections(ids) : [];
            const expired = count(records);
            position = next === '0' ? 'done' : next;
            yield {
              records: records.filter((r): r is ConnectionRecord => r !== undefined),
              cursor: position,
              scanned: ids.length,
              skipped: expired ? { expired } : {},
            } as unknown as B;
            if (next === '0') return;
          }
        }
        case 'queues': {
          // Queues in name order, each in FIFO order: [queue, last seq written].
          const [fromQueue, afterSeq] = (cursor as [string, number] | undefined) ?? ['', -1];
          for (const queue of await taggedNames('q', 'seq')) {
            if (compareUtf8(queue, fromQueue) < 0) continue;
            const index = (await queueIndex(queue)).filter((m) => queue !== fromQueue || m.seq > afterSeq);
            for (let i = 0; i < index.length; i += batchSize) {
              const chunk = index.slice(i, i + batchSize);
              const records = await readMessages(queue, chunk);
              const gone = count(records);
              yield {
                records: records.filter((r): r is QueueMessageRecord => r !== undefined),
                cursor: [queue, chunk[chunk.length - 1]!.seq],
                scanned: chunk.length,
                skipped: gone ? { 'acked meanwhile': gone } : {},
              } as unknown as B;
            }
          }
          yield { records: [], cursor: 'done', scanned: 0 } as unknown as B;
          return;
        }
        case 'dedup': {
          // One SCAN over every queue's dedup keys (`<prefix>{q:<name>}:dd:<id>`).
          const head = queueHead(p);
          for await (const batch of scanned<'dedup'>(
            `${globEscape(head)}*}:dd:*`,
            cursor,
            batchSize,
            async (keys, node) => {
              const parsed = keys.flatMap((key) => {
                const rest = key.slice(head.length);
                // The name inside the tag has no raw `}`: the first one ends it.
                const end = rest.indexOf('}');
                const queue =
                  end < 0 || rest.slice(end, end + 5) !== '}:dd:' ? undefined : untag(rest.slice(0, end));
                return queue === undefined || RESERVED_QUEUES.has(queue)
                  ? []
                  : [{ key, queue, dedupId: rest.slice(end + '}:dd:'.length) }];
              });
              const pipeline = pipelineOn(node).time();
              for (const { key } of parsed) pipeline.get(key).pttl(key);
              const replies = await exec(pipeline);
              const now = serverMs(replies[0]);
              const records: DedupRecord[] = [];
              parsed.forEach(({ queue, dedupId }, i) => {
                const messageId = replies[1 + i * 2] as string | null;
                const pttl = Number(replies[2 + i * 2]);
                if (messageId === null || pttl < 0) return;
                records.push({ queue, dedupId, messageId, expiresAtMs: now + pttl });
              });
              return { records, skipped: {} };
            },
          ))
            yield batch as unknown as B;
          return;
        }
        case 'events': {
          // Channels in name order, each in id order: [channel, last id written].
          const [fromChannel, afterId] = (cursor as [string, number] | undefined) ?? ['', 0];
          for (const channel of await taggedNames('e', 'n')) {
            if (compareUtf8(channel, fromChannel) < 0) continue;
            const e = eventKeys(p, channel);
            const lastId = Number((await client.get(e.counter)) ?? 0);
            let after = channel === fromChannel ? afterId : 0;
            for (;;) {
              const start = after > 0 ? `(${after}-1` : '-';
              const entries = (await client.xrange(e.stream, start, '+', 'COUNT', batchSize)) as [
                string,
                string[],
              ][];
              if (entries.length === 0) break;
              const records = entries.map((e) => toEvent(channel, lastId, e));
              after = records[records.length - 1]!.id;
              yield { records, cursor: [channel, after], scanned: records.length } as unknown as B;
              if (entries.length < batchSize) break;
            }
            // A channel whose history is empty still carries its counter over.
            if (after === 0 && lastId > 0) {
              yield {
                records: [],
                cursor: [channel, 0],
                scanned: 0,
                counters: [{ channel, lastId }],
              } as unknown as B;
            }
          }
          yield { records: [], cursor: 'done', scanned: 0 } as unknown as B;
          return;
        }
        case 'audit': {
          let after = (cursor as string | undefined) ?? '';
          for (;;) {
            const entries = (await client.xrange(
              audit.log,
              after === '' ? '-' : `(${after}`,
              '+',
              'COUNT',
              batchSize,
            )) as [string, string[]][];
            if (entries.length === 0) break;
            const records = entries.map(toAudit);
            after = records[records.length - 1]!.sourceId;
            yield { records, cursor: after, scanned: records.length } as unknown as B;
            if (entries.length < batchSize) break;
          }
          return;
        }
      }
    },

    async fetch<S extends StoreName>(store: S, ids: string[]): Promise<(RecordOf[S] | undefined)[]> {
      if (ids.length === 0) return [];
      type R = (RecordOf[S] | undefined)[];
      switch (store) {
        case 'kv': {
          const keys = ids.map((id) => `${kvBase}${id}`);
          // Keys of a cluster live on different nodes: one GET/PTTL pair each, in flight together.
          if (client instanceof Cluster) {
            const out = await Promise.all(keys.map(async (key) => (await readKv([key])).records[0]));
            return out as R;
          }
          return (await readKv(keys)).records as R;
        }
        case 'sessions':
          return (await readSessions(ids)).records as R;
        case 'tokens': {
          const hashes = await client.hmget(tokens.ids, ...ids);
          const pairs = ids.map((id, i): [string, string] => [id, hashes[i] ?? '']);
          const records = await readTokens(pairs.map(([id, hash]) => [id, hash || 'none']));
          return records.map((r, i) => (hashes[i] == null ? undefined : r)) as R;
        }
        case 'connections':
          return (await readConnections(ids)) as R;
        case 'queues':
          return (await fetchMessages(ids)) as R;
        case 'dedup': {
          const out: (DedupRecord | undefined)[] = [];
          for (const pid of ids) {
            const [queue, dedupId] = splitPairId(pid);
            const key = queueKeys(p, queue).dedup(dedupId);
            const replies = await exec(pipelineOn(undefined).time().get(key).pttl(key));
            const messageId = replies[1] as string | null;
            const pttl = Number(replies[2]);
            out.push(
              messageId === null || pttl < 0
                ? undefined
                : { queue, dedupId, messageId, expiresAtMs: serverMs(replies[0]) + pttl },
            );
          }
          return out as R;
        }
        case 'events': {
          const out: (EventRecord | undefined)[] = [];
          for (const pid of ids) {
            const [channel, id] = splitPairId(pid);
            const e = eventKeys(p, channel);
            const replies = await exec(
              pipelineOn(undefined).get(e.counter).xrange(e.stream, `${id}-1`, `${id}-1`),
            );
            const entries = replies[1] as [string, string[]][];
            out.push(entries[0] ? toEvent(channel, Number(replies[0] ?? 0), entries[0]) : undefined);
          }
          return out as R;
        }
        case 'audit':
          throw new Error('audit entries are matched by content, not fetched by id');
      }
      throw new Error(`unknown store ${String(store)}`);
    },

    async remove(store, ids) {
      if (store !== 'queues' && store !== 'dedup')
        throw new Error(`${store}: items are not moved, only copied`);
      const byQueue = new Map<string, string[]>();
      for (const pid of ids) {
        const [queue, id] = splitPairId(pid);
        byQueue.set(queue, [...(byQueue.get(queue) ?? []), id]);
      }
      let removed = 0;
      for (const [queue, list] of byQueue) {
        const q = queueKeys(p, queue);
        if (store === 'dedup') {
          removed += await client.del(...list.map((id) => q.dedup(id)));
          continue;
        }
        // One script per queue (one hash tag): a message leaves every set and its hash at once.
        removed += Number(
          await client.eval(REMOVE_MESSAGES, 4, q.ready, q.delayed, q.inflight, q.dead, q.base, ...list),
        );
      }
      return removed;
    },

    async check() {
      try {
        await client.ping();
      } catch (error) {
        throw new DataMigrationInputError(
          `cannot reach the source Redis at ${options.name}: ${(error as Error).message}`,
          { cause: error },
        );
      }
    },

    async close() {
      // The caller owns the client.
    },
  };
  return source;
}

/** Byte order of UTF-8 strings (PostgreSQL's COLLATE "C"). */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
