/**
 * The stores kept as streams: events (one stream and counter per channel, read in channel name
 * order, each in id order: cursor `[channel, last id]`) and the audit log (one stream: cursor
 * the last entry id).
 */
import { auditKeys, eventHead, eventKeys, TAGGED_TAILS } from '../../storage/redis/keys.js';
import type { AuditRecord, EventRecord } from '../records.js';
import { splitPairId } from '../records.js';
import { namedCursor, textCursor } from '../source.js';
import { compareUtf8, pipelineOn, type RedisReadContext, type StoreReader, taggedNames } from './context.js';
import {
  exec,
  nullable,
  type StreamEntry,
  streamEntry,
  streamSeq,
  text,
  UnexpectedReplyError,
} from './replies.js';

const OUTCOMES: ReadonlySet<string> = new Set<AuditRecord['outcome']>(['ok', 'denied', 'error']);
const isOutcome = (value: string): value is AuditRecord['outcome'] => OUTCOMES.has(value);

/** An entry's outcome (absent: `ok`); another value is no entry this project wrote. */
function outcomeOf(entry: StreamEntry): AuditRecord['outcome'] {
  const outcome = entry.fields.o ?? 'ok';
  if (!isOutcome(outcome)) throw new UnexpectedReplyError(`audit entry ${entry.id}'s outcome`, outcome);
  return outcome;
}

function toEvent(channel: string, channelLastId: number, { id, fields }: StreamEntry): EventRecord {
  return {
    channel,
    id: streamSeq(id),
    message: fields.m ?? 'null',
    publishedAtMs: Number(fields.t),
    channelLastId,
  };
}

function toAudit(entry: StreamEntry): AuditRecord {
  const { id, fields } = entry;
  return {
    sourceId: id,
    atMs: streamSeq(id),
    identity: fields.i ?? '',
    action: fields.a ?? '',
    resource: nullable(fields.r),
    correlationId: nullable(fields.c),
    outcome: outcomeOf(entry),
    details: nullable(fields.d),
  };
}

const channelNames = (ctx: RedisReadContext) =>
  taggedNames(ctx, eventHead(ctx.prefix), TAGGED_TAILS.eventCounter);

export function eventsReader(ctx: RedisReadContext): StoreReader<'events'> {
  return {
    async estimate() {
      let total = 0;
      for (const channel of await channelNames(ctx))
        total += await ctx.client.xlen(eventKeys(ctx.prefix, channel).stream);
      return total;
    },

    async *batches(cursor, batchSize) {
      const [fromChannel, afterId] = namedCursor(cursor, ['', 0]);
      for (const channel of await channelNames(ctx)) {
        if (compareUtf8(channel, fromChannel) < 0) continue;
        const keys = eventKeys(ctx.prefix, channel);
        const lastId = Number((await ctx.client.get(keys.counter)) ?? 0);
        let after = channel === fromChannel ? afterId : 0;
        for (;;) {
          const start = after > 0 ? `(${after}-1` : '-';
          const entries = await ctx.client.xrange(keys.stream, start, '+', 'COUNT', batchSize);
          if (entries.length === 0) break;
          const records = entries.map((entry) => toEvent(channel, lastId, streamEntry(entry)));
          after = records[records.length - 1]!.id;
          yield { records, cursor: [channel, after], scanned: records.length };
          if (entries.length < batchSize) break;
        }
        // A channel whose history is empty still carries its counter over.
        if (after === 0 && lastId > 0)
          yield { records: [], cursor: [channel, 0], scanned: 0, counters: [{ channel, lastId }] };
      }
      yield { records: [], cursor: 'done', scanned: 0 };
    },

    async fetch(ids) {
      const found: (EventRecord | undefined)[] = [];
      for (const pid of ids) {
        const [channel, id] = splitPairId(pid);
        const keys = eventKeys(ctx.prefix, channel);
        const [counter, entries] = await exec(
          pipelineOn(ctx).get(keys.counter).xrange(keys.stream, `${id}-1`, `${id}-1`),
        );
        const [entry] = Array.isArray(entries) ? entries : [];
        found.push(
          entry === undefined ? undefined : toEvent(channel, Number(text(counter) ?? 0), streamEntry(entry)),
        );
      }
      return found;
    },
  };
}

export function auditReader(ctx: RedisReadContext): StoreReader<'audit'> {
  const keys = auditKeys(ctx.prefix);
  return {
    estimate: () => ctx.client.xlen(keys.log),

    async *batches(cursor, batchSize) {
      let after = textCursor(cursor, '');
      for (;;) {
        const entries = await ctx.client.xrange(
          keys.log,
          after === '' ? '-' : `(${after}`,
          '+',
          'COUNT',
          batchSize,
        );
        if (entries.length === 0) break;
        const records = entries.map((entry) => toAudit(streamEntry(entry)));
        after = records[records.length - 1]!.sourceId;
        yield { records, cursor: after, scanned: records.length };
        if (entries.length < batchSize) break;
      }
    },

    fetch() {
      return Promise.reject(new Error('audit entries are matched by content, not fetched by id'));
    },
  };
}
