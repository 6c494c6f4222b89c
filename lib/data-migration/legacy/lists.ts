/**
 * The legacy lists: `session:events` → the events channel of the same name (ids are positions
 * from the oldest, 1 up), and the audit lists `auth:audit`, `auth:audit:enhanced` → audit
 * entries (source ids `<list>:<position>`, so a copy resumes after the last one written).
 */
import { type AuditRecord, type EventRecord, splitPairId } from '../records.js';
import { DataMigrationInputError, type StoreReader } from '../source.js';
import {
  AUDIT_LISTS,
  add,
  isObject,
  parseIsoTime,
  parseJson,
  SESSION_EVENTS,
  SKIP_REASONS,
  textOrNull,
} from './layout.js';
import { type LegacyReadContext, listItems, listRange } from './reads.js';

function eventRecord(text: string, id: number, lastId: number, importedAtMs: number): EventRecord {
  const parsed = parseJson(text);
  const at = parsed.ok && isObject(parsed.value) ? parseIsoTime(parsed.value.timestamp) : undefined;
  return {
    channel: SESSION_EVENTS,
    id,
    message: parsed.ok ? text : JSON.stringify(text),
    publishedAtMs: at ?? importedAtMs,
    channelLastId: lastId,
  };
}

const AUDIT_LIST_NAMES: readonly string[] = AUDIT_LISTS;

const auditId = (list: number, position: number) =>
  `${AUDIT_LISTS[list]}:${String(position).padStart(10, '0')}`;

/** Where an audit source id points: [list index, position]; undefined when it is not one of ours. */
function parseAuditId(id: string): [number, number] | undefined {
  const at = id.lastIndexOf(':');
  const list = AUDIT_LIST_NAMES.indexOf(id.slice(0, at));
  const position = Number(id.slice(at + 1));
  if (at < 0 || list < 0 || !/^\d+$/.test(id.slice(at + 1))) return undefined;
  return [list, position];
}

function auditRecord(text: string, sourceId: string, importedAtMs: number): AuditRecord | undefined {
  const parsed = parseJson(text);
  if (!parsed.ok || !isObject(parsed.value)) return undefined;
  const entry = parsed.value;
  const data = isObject(entry.data) ? entry.data : undefined;
  const outcome = data?.outcome;
  return {
    sourceId,
    atMs: parseIsoTime(entry.timestamp) ?? parseIsoTime(data?.timestamp) ?? importedAtMs,
    identity: textOrNull(data?.service_identity) ?? 'unknown',
    action: textOrNull(entry.type) ?? 'unknown',
    resource: textOrNull(data?.cluster_id),
    correlationId: textOrNull(entry.correlation_id),
    outcome: outcome === 'failure' || outcome === 'timeout' ? 'error' : 'ok',
    details: data === undefined ? null : JSON.stringify(data),
  };
}

export function legacyEventsReader(ctx: LegacyReadContext): StoreReader<'events'> {
  const key = `${ctx.prefix}${SESSION_EVENTS}`;
  return {
    estimate: () => ctx.client.llen(key),

    async *batches(cursor, batchSize) {
      // Oldest first from the id after the cursor (the last id written).
      let after = typeof cursor === 'number' ? cursor : 0;
      for (;;) {
        const { entries, length } = await listRange(ctx, key, after + 1, after + batchSize);
        if (entries.length === 0) break;
        const records = entries.map((text, i) => eventRecord(text, after + 1 + i, length, ctx.importedAtMs));
        after += entries.length;
        const done = after >= length;
        yield { records, cursor: done ? 'done' : after, scanned: records.length };
        if (done) return;
      }
      yield { records: [], cursor: 'done', scanned: 0 };
    },

    async fetch(ids) {
      const positions = ids.map((pid) => {
        const [channel, id] = splitPairId(pid);
        return channel === SESSION_EVENTS && /^[1-9]\d*$/.test(id) ? Number(id) : undefined;
      });
      const wanted = positions.filter((position): position is number => position !== undefined);
      const { items, length } = await listItems(ctx, key, wanted);
      let next = 0;
      return positions.map((position) => {
        if (position === undefined) return undefined;
        const text = items[next++];
        return text == null ? undefined : eventRecord(text, position, length, ctx.importedAtMs);
      });
    },
  };
}

export function legacyAuditReader(ctx: LegacyReadContext): StoreReader<'audit'> {
  return {
    async estimate() {
      let total = 0;
      for (const list of AUDIT_LISTS) total += await ctx.client.llen(`${ctx.prefix}${list}`);
      return total;
    },

    async *batches(cursor, batchSize) {
      // The cursor is the last source id written: resume in its list, after its position.
      const start = typeof cursor === 'string' ? parseAuditId(cursor) : undefined;
      if (typeof cursor === 'string' && start === undefined) {
        throw new DataMigrationInputError(
          `the audit resume point ${JSON.stringify(cursor)} is not a legacy audit position: ` +
            'it comes from another source; restart the copy of this source with a new job',
        );
      }
      const [fromList, fromPosition] = start ?? [0, 0];
      for (let list = fromList; list < AUDIT_LISTS.length; list++) {
        const key = `${ctx.prefix}${AUDIT_LISTS[list]}`;
        let after = list === fromList ? fromPosition : 0;
        for (;;) {
          const { entries, length } = await listRange(ctx, key, after + 1, after + batchSize);
          if (entries.length === 0) break;
          const records: AuditRecord[] = [];
          const skipped: Record<string, number> = {};
          entries.forEach((text, i) => {
            const record = auditRecord(text, auditId(list, after + 1 + i), ctx.importedAtMs);
            if (record) records.push(record);
            else add(skipped, SKIP_REASONS.unreadableAudit);
          });
          after += entries.length;
          yield { records, cursor: auditId(list, after), scanned: entries.length, skipped };
          if (after >= length) break;
        }
      }
    },

    fetch: () => Promise.reject(new Error('audit entries are matched by content, not fetched by id')),
  };
}
