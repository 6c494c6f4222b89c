/**
 * Legacy sessions: `session:{id}` (JSON) → sessions, with correlation ids cross-checked against
 * the `correlation:{corr}:sessions` sets, and the index entries (`sessions:active`,
 * `cluster:session:*`, the correlation sets) that name no live session counted as skipped.
 */
import type { SessionRecord } from '../records.js';
import { globEscape } from '../redis-scan.js';
import type { StoreReader } from '../source.js';
import {
  add,
  classifyLegacyKey,
  isObject,
  isWrongType,
  parseIsoTime,
  parseJson,
  SKIP_REASONS,
  STALE_REASONS,
  textOrNull,
} from './layout.js';
import {
  allKeys,
  countKeys,
  existsMany,
  type LegacyReadContext,
  readStrings,
  type StringRead,
  setMembers,
  unprefixed,
  walk,
} from './reads.js';

/** Session JSON fields that have a column; the others are kept in the session's data. */
const MAPPED = new Set([
  'session_id',
  'cluster_id',
  'user_id',
  'service_identity',
  'correlation_id',
  'created_at',
  'expires_at',
  'last_activity',
  'ttl',
]);
const DEFAULT_TTL_MS = 3600_000;

/** Session id → correlation id, from the `correlation:{corr}:sessions` sets; read once, again on `refresh`. */
function correlationIndex(ctx: LegacyReadContext) {
  const head = `${ctx.prefix}correlation:`;
  const tail = ':sessions';
  let index: Promise<Map<string, string>> | undefined;

  async function read(): Promise<Map<string, string>> {
    const map = new Map<string, string>();
    const keys = (await allKeys(ctx, `${globEscape(head)}*${globEscape(tail)}`))
      .filter((key) => key.length > head.length + tail.length)
      .sort();
    for (const key of keys) {
      const correlationId = key.slice(head.length, -tail.length);
      let members: string[];
      try {
        members = await setMembers(ctx, key);
      } catch (error) {
        if (isWrongType(error)) continue;
        throw error;
      }
      for (const sessionId of members) if (!map.has(sessionId)) map.set(sessionId, correlationId);
    }
    return map;
  }

  return (refresh = false): Promise<Map<string, string>> => {
    if (refresh || index === undefined) {
      index = read();
      index.catch(() => {
        index = undefined;
      });
    }
    return index;
  };
}

type SessionRead = { record: SessionRecord } | { skip: string };

function sessionRecord(
  id: string,
  read: StringRead,
  byCorrelation: Map<string, string>,
  importedAtMs: number,
): SessionRead {
  if (read.state === 'gone') return { skip: SKIP_REASONS.expired };
  if (read.state === 'wrongType') return { skip: SKIP_REASONS.wrongType };
  const parsed = parseJson(read.value);
  if (!parsed.ok || !isObject(parsed.value)) return { skip: SKIP_REASONS.unreadableSession };
  const session = parsed.value;
  if (typeof session.cluster_id !== 'string' || session.cluster_id === '')
    return { skip: SKIP_REASONS.noCluster };
  const ttlMs =
    typeof session.ttl === 'number' && session.ttl > 0 ? Math.round(session.ttl * 1000) : DEFAULT_TTL_MS;
  const lastActivity = parseIsoTime(session.last_activity);
  const created = parseIsoTime(session.created_at) ?? lastActivity ?? importedAtMs;
  const lastActivityMs = lastActivity ?? created;
  const expiresAtMs = read.expiresAtMs ?? lastActivityMs + ttlMs;
  if (expiresAtMs <= read.now) return { skip: SKIP_REASONS.expired };
  const data: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(session)) if (!MAPPED.has(field)) data[field] = value;
  return {
    record: {
      sessionId: id,
      clusterId: session.cluster_id,
      userId: textOrNull(session.user_id),
      correlationId: textOrNull(session.correlation_id) ?? byCorrelation.get(id) ?? null,
      serviceIdentity: textOrNull(session.service_identity),
      data: JSON.stringify(data),
      ttlMs,
      createdAtMs: created,
      lastActivityMs,
      expiresAtMs,
    },
  };
}

export function legacySessionsReader(ctx: LegacyReadContext): StoreReader<'sessions'> {
  const head = `${ctx.prefix}session:`;
  const isSessionName = (name: string) => classifyLegacyKey(name).store === 'sessions';
  const correlations = correlationIndex(ctx);

  /** Entries of the legacy indexes that name no live session, by reason. */
  async function staleIndexEntries(): Promise<Record<string, number>> {
    const refs: { reason: string; id: string }[] = [];
    try {
      for (const id of await setMembers(ctx, `${ctx.prefix}sessions:active`))
        refs.push({ reason: STALE_REASONS.active, id });
    } catch (error) {
      if (!isWrongType(error)) throw error;
    }
    const clusterKeys = await allKeys(ctx, `${globEscape(`${ctx.prefix}cluster:session:`)}*`);
    for (const read of await readStrings(ctx, clusterKeys))
      if (read.state === 'live') refs.push({ reason: STALE_REASONS.cluster, id: read.value });
    for (const id of (await correlations()).keys()) refs.push({ reason: STALE_REASONS.correlation, id });
    const live = await existsMany(
      ctx,
      refs.map((ref) => `${head}${ref.id}`),
    );
    const stale: Record<string, number> = {};
    refs.forEach((ref, i) => {
      if (!live[i]) add(stale, ref.reason);
    });
    return stale;
  }

  return {
    estimate: () => countKeys(ctx, `${globEscape(head)}*`, isSessionName),

    async *batches(cursor, batchSize) {
      // A fresh read of the correlation sets for a copy or validation from the start.
      await correlations(cursor === undefined);
      yield* walk<'sessions'>(
        ctx,
        [`${globEscape(head)}*`],
        cursor,
        batchSize,
        async (keys, node) => {
          const sessionKeys = keys.filter((key) => isSessionName(unprefixed(ctx, key)));
          const reads = await readStrings(ctx, sessionKeys, node);
          const byCorrelation = await correlations();
          const records: SessionRecord[] = [];
          const skipped: Record<string, number> = {};
          reads.forEach((read, i) => {
            const session = sessionRecord(
              sessionKeys[i]!.slice(head.length),
              read,
              byCorrelation,
              ctx.importedAtMs,
            );
            if ('record' in session) records.push(session.record);
            else add(skipped, session.skip);
          });
          return { records, skipped };
        },
        staleIndexEntries,
      );
    },

    async fetch(ids) {
      const wanted = ids.filter((id) => isSessionName(`session:${id}`));
      const reads = await readStrings(
        ctx,
        wanted.map((id) => `${head}${id}`),
      );
      const byCorrelation = await correlations();
      const byId = new Map<string, SessionRecord>();
      wanted.forEach((id, i) => {
        const session = sessionRecord(id, reads[i]!, byCorrelation, ctx.importedAtMs);
        if ('record' in session) byId.set(id, session.record);
      });
      return ids.map((id) => byId.get(id));
    },
  };
}
