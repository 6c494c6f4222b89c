/**
 * Reads a database of the upstream (Python) Kubently service as migration records: the import
 * of an existing deployment. Keys are listed with SCAN (on every primary of a cluster), never
 * KEYS, and read with pipelines; remaining TTLs become absolute expiries with the server's TIME,
 * read in the same pipeline.
 *
 * How the legacy keys map onto the stores (every value there is UTF-8 text; JSON is Python's
 * `json.dumps`; times are `datetime.isoformat()`, `+00:00` with or without microseconds, and a
 * timestamp without an offset is UTC):
 *
 * sessions
 * - `session:{id}` (JSON, TTL) → a session: id from the key; `cluster_id`, `user_id`,
 *   `correlation_id`, `service_identity` to their columns; `created_at` and `last_activity` to
 *   the creation and activity times; `ttl` (seconds, default 3600) to the keep-alive ttl. The
 *   expiry is the key's own TTL (server TIME + PTTL): the JSON's `expires_at` is never updated by
 *   a keep-alive and goes stale. A key without TTL expires at `last_activity` + ttl (already past:
 *   skipped as expired). Fields without a column (`command_count`, anything unknown) are kept in
 *   the session's data object. A key whose JSON does not parse, or without `cluster_id`, is
 *   skipped with a reason; the copy goes on.
 * - `correlation:{corr}:sessions` (set) cross-checks correlation ids: a session whose JSON has
 *   none but is a member gets that set's correlation id.
 * - `sessions:active`, `cluster:session:{cluster}` and the correlation sets are the legacy
 *   service's derived indexes; the sessions table is the index here, so they are not written.
 *   Their entries that name no live session are counted as skipped (`STALE_REASONS`).
 *
 * kv (same key names, so code reading them keeps working)
 * - `cluster:active:{cluster}` → value = the stored text as a JSON string (`"1"` or a session
 *   id), expiry from its TTL. It also says an executor is connected without any session, which
 *   sessions cannot express.
 * - `cluster:{cluster}:capabilities` → value = the JSON as stored, expiry from its TTL.
 * - `result:{command}` → the JSON as stored (text that is not JSON: as a JSON string).
 * - `command:cluster:{command}` → the cluster id as a JSON string (always a string: a cluster
 *   named `1` stays the string "1").
 *
 * tokens (only SHA-256 hashes are written; a plaintext never leaves this module)
 * - `executor:token:{cluster}` (plaintext) → id `legacy-executor:{cluster}`, identity
 *   `executor:{cluster}`, the executor's scopes (`EXECUTOR_SCOPES`) on the cluster's resources
 *   (`{cluster}`, `{cluster}:*`, `*:{cluster}`, `*:{cluster}:*`), created at the import time (the
 *   legacy layout keeps none), expiring with the key's TTL if it has one.
 * - `api:key:{sha256}` (identity string) → id `legacy-api-key:{sha256}`, the hash from the key
 *   name (a name that is not 64 lowercase hex digits is skipped: the legacy service could never
 *   have matched it), every scope but `admin` on `*`, expiring with the key's TTL if any.
 * - Two legacy tokens with the same secret (two clusters sharing one executor token) cannot both
 *   be kept, since a secret names one identity here: the first read is kept, the others skipped.
 *
 * events
 * - `session:events` (list, newest first) → channel `session:events`; an event's id is its
 *   position counted from the list's tail (the oldest is 1), so ids stay put while the service
 *   pushes new events; its time is the entry's `timestamp`; the channel's last id is the list's
 *   length. An entry that is not JSON is kept as a JSON string.
 *
 * audit
 * - `auth:audit`, then `auth:audit:enhanced` (lists, newest first) → entries oldest first, each
 *   list in turn; source id `{list}:{position from the tail, 10 digits}`, the copy's resume point.
 *   identity = `data.service_identity` (else `unknown`), action = `type`, resource =
 *   `data.cluster_id`, correlation id = the top-level `correlation_id`, outcome = `data.outcome`
 *   (`success` → ok; `failure`, `timeout` → error; anything else ok), details = `data`, time =
 *   `timestamp`.
 *
 * Not migrated, counted per family in the kv store's skipped reasons (`notMigrated`): `metrics:*`
 * counters, the dead `queue:commands:*` and `command:tracking:*`, the A2A agent's checkpoints
 * `kubently:ckpt:*` and incident store `kubently:incidents:*`, and any key not named above.
 *
 * Positions counted from a list's tail are stable while the service only pushes; once a list is
 * full (1000 events, 10000 audit entries) every push also trims its oldest entry and shifts them.
 * Import from a stopped service, or one whose lists are not full.
 */
import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from '../storage/redis/client.js';
import { SCOPES } from '../storage/types.js';
import {
  type AuditRecord,
  type EventRecord,
  type KvRecord,
  type RecordOf,
  type SessionRecord,
  type StoreName,
  sha256,
  splitPairId,
  type TokenRecord,
} from './records.js';
import { globEscape, scanStep as rawScanStep } from './redis-scan.js';
import { type Cursor, DataMigrationInputError, type RecordSource, type SourceBatch } from './source.js';

export interface LegacySourceOptions {
  client: RedisClient;
  /** For messages: where the data comes from, without credentials. */
  name: string;
  /** A prefix in front of every legacy key name (default none: the upstream service uses none). */
  prefix?: string;
  /**
   * The import time in ms (default the clock), read once: imported tokens are created then. A
   * copy resumed or validated in another process should pass the first run's time.
   */
  now?: () => number;
}

/** The channel the legacy session events are imported into. */
export const SESSION_EVENTS = 'session:events';
/** The audit lists, in the order they are imported. */
export const AUDIT_LISTS = ['auth:audit', 'auth:audit:enhanced'] as const;

/** What an executor token may do: its cluster's queues, events, kv, and reading sessions. */
export const EXECUTOR_SCOPES = [
  'queues:send',
  'queues:receive',
  'events:publish',
  'events:subscribe',
  'kv:read',
  'kv:write',
  'sessions:read',
];
/** What a legacy API key may do: everything but administration, as it could upstream. */
export const API_KEY_SCOPES = SCOPES.filter((s) => s !== 'admin') as string[];

export const executorResources = (cluster: string) => [
  cluster,
  `${cluster}:*`,
  `*:${cluster}`,
  `*:${cluster}:*`,
];

/** Key families that stay behind, as the kv store's skipped reasons name them. */
export const NOT_MIGRATED_FAMILIES = [
  'metrics:*',
  'queue:commands:*',
  'command:tracking:*',
  'kubently:ckpt:*',
  'kubently:incidents:*',
] as const;
export const UNRECOGNISED = 'unrecognised keys';
export const notMigrated = (family: string) => `not migrated (${family})`;

/** Entries of the legacy session indexes that name no live session (sessions store, skipped). */
export const STALE_REASONS = {
  active: 'stale index entry: sessions:active member without a live session',
  cluster: 'stale index entry: cluster:session:* naming no live session',
  correlation: 'stale index entry: correlation:*:sessions member without a live session',
} as const;

export const SKIP_REASONS = {
  expired: 'expired',
  unreadableSession: 'session JSON does not parse',
  noCluster: 'session without cluster_id',
  wrongType: 'not a string key',
  badApiKeyName: 'api:key:* name is not a lowercase SHA-256',
  emptyToken: 'empty token value',
  sharedSecret: 'same secret as another legacy token (kept the first)',
  unreadableAudit: 'audit entry JSON does not parse',
} as const;

type Pipeline = ReturnType<Redis['pipeline']>;
type Reply = [Error | null, unknown];

async function execAll(pipeline: Pipeline): Promise<Reply[]> {
  const results = await pipeline.exec();
  if (!results) throw new Error('Connection is closed.');
  return results as Reply[];
}

function serverMs(reply: Reply): number {
  if (reply[0]) throw reply[0];
  const [seconds, micros] = reply[1] as [string, string];
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

const isWrongType = (error: Error) => /WRONGTYPE/.test(error.message);

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):?(\d{2})(?::?(\d{2}))?)?$/i;

/**
 * Epoch ms of a Python `isoformat()` timestamp: microseconds or none, `+HH:MM` (or `Z`), and a
 * naive timestamp read as UTC. Undefined when it is not one.
 */
export function parseIsoTime(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = ISO.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, , sign, oh, om, os] = m;
  const ms = frac ? Number(frac.padEnd(3, '0').slice(0, 3)) : 0;
  const utc = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0), ms);
  if (Number.isNaN(utc) || Number(mo) > 12 || Number(d) > 31 || Number(h) > 23 || Number(mi) > 59)
    return undefined;
  const offset = sign ? (Number(oh) * 3600 + Number(om) * 60 + Number(os ?? 0)) * 1000 : 0;
  return sign === '-' ? utc + offset : utc - offset;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** The text itself when it is JSON, else the text as a JSON string. */
const asJson = (text: string) => (parseJson(text).ok ? text : JSON.stringify(text));

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

const textOrNull = (v: unknown): string | null =>
  v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v);

const add = (skipped: Record<string, number>, reason: string, n = 1) => {
  if (n > 0) skipped[reason] = (skipped[reason] ?? 0) + n;
};

type Kind =
  | { store: 'kv'; family: 'active' | 'capabilities' | 'result' | 'command' }
  | { store: 'sessions' | 'session-index' | 'tokens' | 'events' | 'audit' }
  | { store: 'skip'; family: string };

/** What a legacy key name (without the prefix) is. */
export function classifyLegacyKey(name: string): Kind {
  const after = (head: string) => name.length > head.length && name.startsWith(head);
  if (name === SESSION_EVENTS) return { store: 'events' };
  if ((AUDIT_LISTS as readonly string[]).includes(name)) return { store: 'audit' };
  if (
    name === 'sessions:active' ||
    after('cluster:session:') ||
    (after('correlation:') && name.endsWith(':sessions') && name.length > 'correlation::sessions'.length)
  )
    return { store: 'session-index' };
  if (after('session:')) return { store: 'sessions' };
  if (after('executor:token:') || after('api:key:')) return { store: 'tokens' };
  if (after('cluster:active:')) return { store: 'kv', family: 'active' };
  if (
    name.startsWith('cluster:') &&
    name.endsWith(':capabilities') &&
    name.length > 'cluster::capabilities'.length
  )
    return { store: 'kv', family: 'capabilities' };
  if (after('result:')) return { store: 'kv', family: 'result' };
  if (after('command:cluster:')) return { store: 'kv', family: 'command' };
  for (const family of NOT_MIGRATED_FAMILIES)
    if (name.startsWith(family.slice(0, -1))) return { store: 'skip', family };
  return { store: 'skip', family: UNRECOGNISED };
}

/** A string key as read: its text and absolute expiry, or why there is none. */
type StringRead =
  | { state: 'live'; value: string; expiresAtMs: number | null; now: number }
  | { state: 'gone' }
  | { state: 'wrongType' };

export function createLegacySource(options: LegacySourceOptions): RecordSource {
  const { client } = options;
  const p = options.prefix ?? '';
  const importedAtMs = (options.now ?? Date.now)();
  const cluster = client instanceof Cluster;
  const pipelineOn = (node: Redis | undefined): Pipeline => (node ?? client).pipeline() as Pipeline;
  const strip = (key: string) => key.slice(p.length);

  const scanStep = (pattern: string, cursor: Cursor | undefined, count: number) =>
    rawScanStep(client, pattern, cursor, count);

  /** Every key matching `pattern` (glob over the prefixed name), for indexes and estimates. */
  async function allKeys(pattern: string): Promise<{ key: string; node: Redis }[]> {
    const out: { key: string; node: Redis }[] = [];
    const seen = new Set<string>();
    let cursor: Cursor | undefined;
    for (;;) {
      const { keys, node, next } = await scanStep(pattern, cursor, 1000);
      for (const key of keys) {
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ key, node });
      }
      if (next === null) return out;
      cursor = next;
    }
  }

  /**
   * SCAN over several patterns in turn, `batchSize` keys at a time: the cursor is
   * [pattern index, node cursor] ('done' at the end).
   */
  async function* walk<S extends StoreName>(
    patterns: string[],
    cursor: Cursor | undefined,
    batchSize: number,
    read: (
      keys: string[],
      node: Redis,
      pattern: number,
    ) => Promise<{ records: RecordOf[S][]; skipped: Record<string, number> }>,
    last?: () => Promise<Record<string, number>>,
  ): AsyncIterable<SourceBatch<S>> {
    let [pattern, position] = (cursor as [number, Cursor | null] | undefined) ?? [0, null];
    for (;;) {
      const { keys, node, next } = await scanStep(patterns[pattern]!, position ?? undefined, batchSize);
      const unique = [...new Set(keys)];
      const { records, skipped } = unique.length
        ? await read(unique, node, pattern)
        : { records: [], skipped: {} };
      if (next === null) {
        pattern += 1;
        position = null;
      } else position = next;
      const done = pattern >= patterns.length;
      if (done && last) for (const [reason, n] of Object.entries(await last())) add(skipped, reason, n);
      yield { records, cursor: done ? 'done' : [pattern, position], scanned: unique.length, skipped };
      if (done) return;
    }
  }

  /** GET and PTTL of string keys with the server's time: on `node` (SCAN answered from there) or by key. */
  async function readStrings(keys: string[], node?: Redis): Promise<StringRead[]> {
    if (keys.length === 0) return [];
    if (node === undefined && cluster && keys.length > 1) {
      return (await Promise.all(keys.map((key) => readStrings([key])))).flat();
    }
    const pipeline = pipelineOn(node).time();
    for (const key of keys) pipeline.get(key).pttl(key);
    const replies = await execAll(pipeline);
    const now = serverMs(replies[0]!);
    return keys.map((_, i): StringRead => {
      const [getError, value] = replies[1 + i * 2]!;
      const [pttlError, pttl] = replies[2 + i * 2]!;
      if (getError) {
        if (isWrongType(getError)) return { state: 'wrongType' };
        throw getError;
      }
      if (pttlError) throw pttlError;
      const left = Number(pttl);
      if (value === null || left === -2) return { state: 'gone' };
      return { state: 'live', value: value as string, expiresAtMs: left < 0 ? null : now + left, now };
    });
  }

  /** Whether each key exists. */
  async function existsMany(keys: string[]): Promise<boolean[]> {
    const out: boolean[] = [];
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      if (cluster) {
        out.push(...(await Promise.all(chunk.map(async (key) => (await client.exists(key)) > 0))));
        continue;
      }
      const pipeline = pipelineOn(undefined);
      for (const key of chunk) pipeline.exists(key);
      for (const [error, n] of await execAll(pipeline)) {
        if (error) throw error;
        out.push(Number(n) > 0);
      }
    }
    return out;
  }

  async function setMembers(key: string): Promise<string[]> {
    const members = new Set<string>();
    let position = '0';
    do {
      const [next, page] = await client.sscan(key, position, 'COUNT', 1000);
      for (const m of page) members.add(m);
      position = next;
    } while (position !== '0');
    return [...members];
  }

  // -- kv -------------------------------------------------------------------------------
  function kvRecord(
    name: string,
    family: 'active' | 'capabilities' | 'result' | 'command',
    read: StringRead,
  ) {
    if (read.state !== 'live') return undefined;
    const value =
      family === 'active' || family === 'command' ? JSON.stringify(read.value) : asJson(read.value);
    return { key: name, value, expiresAtMs: read.expiresAtMs } satisfies KvRecord;
  }

  // -- sessions -------------------------------------------------------------------------
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
  const corrHead = `${p}correlation:`;
  const corrTail = ':sessions';
  let correlationIndex: Promise<Map<string, string>> | undefined;

  /** Session id → correlation id, from the `correlation:{corr}:sessions` sets. */
  function correlations(refresh = false): Promise<Map<string, string>> {
    if (refresh || correlationIndex === undefined) {
      correlationIndex = (async () => {
        const map = new Map<string, string>();
        const keys = (await allKeys(`${globEscape(corrHead)}*${globEscape(corrTail)}`))
          .map((k) => k.key)
          .filter((k) => k.length > corrHead.length + corrTail.length)
          .sort();
        for (const key of keys) {
          const corr = key.slice(corrHead.length, -corrTail.length);
          let members: string[];
          try {
            members = await setMembers(key);
          } catch (error) {
            if (isWrongType(error as Error)) continue;
            throw error;
          }
          for (const m of members) if (!map.has(m)) map.set(m, corr);
        }
        return map;
      })();
      correlationIndex.catch(() => {
        correlationIndex = undefined;
      });
    }
    return correlationIndex;
  }

  type SessionRead = { record: SessionRecord } | { skip: string };

  function sessionRecord(id: string, read: StringRead, byCorrelation: Map<string, string>): SessionRead {
    if (read.state === 'gone') return { skip: SKIP_REASONS.expired };
    if (read.state === 'wrongType') return { skip: SKIP_REASONS.wrongType };
    const parsed = parseJson(read.value);
    if (!parsed.ok || !isObject(parsed.value)) return { skip: SKIP_REASONS.unreadableSession };
    const s = parsed.value;
    if (typeof s.cluster_id !== 'string' || s.cluster_id === '') return { skip: SKIP_REASONS.noCluster };
    const ttlMs = typeof s.ttl === 'number' && s.ttl > 0 ? Math.round(s.ttl * 1000) : DEFAULT_TTL_MS;
    const lastActivity = parseIsoTime(s.last_activity);
    const created = parseIsoTime(s.created_at) ?? lastActivity ?? importedAtMs;
    const lastActivityMs = lastActivity ?? created;
    const expiresAtMs = read.expiresAtMs ?? lastActivityMs + ttlMs;
    if (expiresAtMs <= read.now) return { skip: SKIP_REASONS.expired };
    const data: Record<string, unknown> = {};
    for (const [field, value] of Object.entries(s)) if (!MAPPED.has(field)) data[field] = value;
    return {
      record: {
        sessionId: id,
        clusterId: s.cluster_id,
        userId: textOrNull(s.user_id),
        correlationId: textOrNull(s.correlation_id) ?? byCorrelation.get(id) ?? null,
        serviceIdentity: textOrNull(s.service_identity),
        data: JSON.stringify(data),
        ttlMs,
        createdAtMs: created,
        lastActivityMs,
        expiresAtMs,
      },
    };
  }

  const sessionHead = `${p}session:`;
  const isSessionKey = (key: string) => classifyLegacyKey(strip(key)).store === 'sessions';

  /** Entries of the legacy indexes that name no live session, by reason. */
  async function staleIndexEntries(): Promise<Record<string, number>> {
    const refs: { reason: string; id: string }[] = [];
    try {
      for (const id of await setMembers(`${p}sessions:active`))
        refs.push({ reason: STALE_REASONS.active, id });
    } catch (error) {
      if (!isWrongType(error as Error)) throw error;
    }
    const clusterKeys = (await allKeys(`${globEscape(`${p}cluster:session:`)}*`)).map((k) => k.key);
    const values = await readStrings(clusterKeys);
    for (const v of values) if (v.state === 'live') refs.push({ reason: STALE_REASONS.cluster, id: v.value });
    for (const id of (await correlations()).keys()) refs.push({ reason: STALE_REASONS.correlation, id });
    const live = await existsMany(refs.map((r) => `${sessionHead}${r.id}`));
    const out: Record<string, number> = {};
    refs.forEach((r, i) => {
      if (!live[i]) add(out, r.reason);
    });
    return out;
  }

  // -- tokens ---------------------------------------------------------------------------
  const EXECUTOR = 'executor:token:';
  const API_KEY = 'api:key:';
  const EXECUTOR_ID = 'legacy-executor:';
  const API_KEY_ID = 'legacy-api-key:';
  const SHA256 = /^[0-9a-f]{64}$/;

  type TokenRead = { record: TokenRecord } | { skip: string };

  function tokenRecord(name: string, read: StringRead): TokenRead {
    if (read.state === 'gone') return { skip: SKIP_REASONS.expired };
    if (read.state === 'wrongType') return { skip: SKIP_REASONS.wrongType };
    if (read.value === '') return { skip: SKIP_REASONS.emptyToken };
    if (name.startsWith(EXECUTOR)) {
      const clusterId = name.slice(EXECUTOR.length);
      return {
        record: {
          id: `${EXECUTOR_ID}${clusterId}`,
          hash: sha256(read.value),
          identity: `executor:${clusterId}`,
          scopes: [...EXECUTOR_SCOPES],
          resources: executorResources(clusterId),
          createdAtMs: importedAtMs,
          expiresAtMs: read.expiresAtMs,
          issuerId: null,
        },
      };
    }
    const hash = name.slice(API_KEY.length);
    if (!SHA256.test(hash)) return { skip: SKIP_REASONS.badApiKeyName };
    return {
      record: {
        id: `${API_KEY_ID}${hash}`,
        hash,
        identity: read.value,
        scopes: [...API_KEY_SCOPES],
        resources: ['*'],
        createdAtMs: importedAtMs,
        expiresAtMs: read.expiresAtMs,
        issuerId: null,
      },
    };
  }

  /** The legacy key of a token id, or undefined for an id this source never answers. */
  function tokenKey(id: string): string | undefined {
    if (id.startsWith(EXECUTOR_ID) && id.length > EXECUTOR_ID.length)
      return `${EXECUTOR}${id.slice(EXECUTOR_ID.length)}`;
    if (id.startsWith(API_KEY_ID) && SHA256.test(id.slice(API_KEY_ID.length)))
      return `${API_KEY}${id.slice(API_KEY_ID.length)}`;
    return undefined;
  }

  // -- lists (events, audit) -------------------------------------------------------------
  /**
   * Entries of a list at positions from its tail (1 = oldest) `from`..`to`, oldest first, and
   * the list's length, read together.
   */
  async function listRange(
    key: string,
    from: number,
    to: number,
  ): Promise<{ entries: string[]; length: number }> {
    const replies = await execAll(pipelineOn(undefined).llen(key).lrange(key, -to, -from));
    for (const [error] of replies) if (error) throw error;
    const entries = (replies[1]![1] as string[]).slice().reverse();
    return { entries, length: Number(replies[0]![1]) };
  }

  const eventsKey = `${p}${SESSION_EVENTS}`;

  function eventRecord(text: string, id: number, lastId: number): EventRecord {
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

  const auditId = (list: number, position: number) =>
    `${AUDIT_LISTS[list]}:${String(position).padStart(10, '0')}`;

  /** Where an audit source id points: [list index, position]; undefined when it is not one of ours. */
  function parseAuditId(id: string): [number, number] | undefined {
    const at = id.lastIndexOf(':');
    const list = (AUDIT_LISTS as readonly string[]).indexOf(id.slice(0, at));
    const position = Number(id.slice(at + 1));
    if (at < 0 || list < 0 || !/^\d+$/.test(id.slice(at + 1))) return undefined;
    return [list, position];
  }

  function auditRecord(text: string, sourceId: string): AuditRecord | undefined {
    const parsed = parseJson(text);
    if (!parsed.ok || !isObject(parsed.value)) return undefined;
    const e = parsed.value;
    const data = isObject(e.data) ? e.data : undefined;
    const outcome = data?.outcome;
    return {
      sourceId,
      atMs: parseIsoTime(e.timestamp) ?? parseIsoTime(data?.timestamp) ?? importedAtMs,
      identity: textOrNull(data?.service_identity) ?? 'unknown',
      action: textOrNull(e.type) ?? 'unknown',
      resource: textOrNull(data?.cluster_id),
      correlationId: textOrNull(e.correlation_id),
      outcome: outcome === 'failure' || outcome === 'timeout' ? 'error' : 'ok',
      details: data === undefined ? null : JSON.stringify(data),
    };
  }

  async function countKeys(pattern: string, wanted: (name: string) => boolean): Promise<number> {
    let total = 0;
    let cursor: Cursor | undefined;
    for (;;) {
      const { keys, next } = await scanStep(pattern, cursor, 5000);
      for (const key of keys) if (wanted(strip(key))) total += 1;
      if (next === null) return total;
      cursor = next;
    }
  }

  const all = `${globEscape(p)}*`;

  const source: RecordSource = {
    name: options.name,
    layout: 'legacy-kubently',
    stores: ['kv', 'sessions', 'tokens', 'events', 'audit'],
    mutable: (store) => store === 'kv' || store === 'sessions' || store === 'tokens',

    async estimate(store) {
      switch (store) {
        case 'kv':
          return countKeys(all, (name) => classifyLegacyKey(name).store === 'kv');
        case 'sessions':
          return countKeys(
            `${globEscape(sessionHead)}*`,
            (name) => classifyLegacyKey(name).store === 'sessions',
          );
        case 'tokens':
          return (
            (await countKeys(`${globEscape(`${p}${EXECUTOR}`)}*`, () => true)) +
            (await countKeys(`${globEscape(`${p}${API_KEY}`)}*`, () => true))
          );
        case 'events':
          return client.llen(eventsKey);
        case 'audit': {
          let total = 0;
          for (const list of AUDIT_LISTS) total += await client.llen(`${p}${list}`);
          return total;
        }
        default:
          return 0;
      }
    },

    async *batches<S extends StoreName>(store: S, cursor: Cursor | undefined, batchSize: number) {
      if (cursor === 'done') return;
      type B = SourceBatch<S>;
      switch (store) {
        case 'kv': {
          for await (const batch of walk<'kv'>([all], cursor, batchSize, async (keys, node) => {
            const skipped: Record<string, number> = {};
            const wanted: { key: string; family: 'active' | 'capabilities' | 'result' | 'command' }[] = [];
            for (const key of keys) {
              const kind = classifyLegacyKey(strip(key));
              if (kind.store === 'kv') wanted.push({ key, family: kind.family });
              else if (kind.store === 'skip') add(skipped, notMigrated(kind.family));
            }
            const reads = await readStrings(
              wanted.map((w) => w.key),
              node,
            );
            const records: KvRecord[] = [];
            reads.forEach((read, i) => {
              const record = kvRecord(strip(wanted[i]!.key), wanted[i]!.family, read);
              if (record) records.push(record);
              else add(skipped, read.state === 'wrongType' ? SKIP_REASONS.wrongType : SKIP_REASONS.expired);
            });
            return { records, skipped };
          }))
            yield batch as unknown as B;
          return;
        }
        case 'sessions': {
          // A fresh read of the correlation sets for a copy or validation from the start.
          await correlations(cursor === undefined);
          for await (const batch of walk<'sessions'>(
            [`${globEscape(sessionHead)}*`],
            cursor,
            batchSize,
            async (keys, node) => {
              const sessionKeys = keys.filter(isSessionKey);
              const reads = await readStrings(sessionKeys, node);
              const byCorrelation = await correlations();
              const records: SessionRecord[] = [];
              const skipped: Record<string, number> = {};
              reads.forEach((read, i) => {
                const r = sessionRecord(sessionKeys[i]!.slice(sessionHead.length), read, byCorrelation);
                if ('record' in r) records.push(r.record);
                else add(skipped, r.skip);
              });
              return { records, skipped };
            },
            staleIndexEntries,
          ))
            yield batch as unknown as B;
          return;
        }
        case 'tokens': {
          // Secrets seen in this read: a second legacy token with the same secret is not kept.
          const seen = new Set<string>();
          for await (const batch of walk<'tokens'>(
            [`${globEscape(`${p}${EXECUTOR}`)}*`, `${globEscape(`${p}${API_KEY}`)}*`],
            cursor,
            batchSize,
            async (keys, node) => {
              const reads = await readStrings(keys, node);
              const records: TokenRecord[] = [];
              const skipped: Record<string, number> = {};
              reads.forEach((read, i) => {
                const r = tokenRecord(strip(keys[i]!), read);
                if ('skip' in r) add(skipped, r.skip);
                else if (seen.has(r.record.hash)) add(skipped, SKIP_REASONS.sharedSecret);
                else {
                  seen.add(r.record.hash);
                  records.push(r.record);
                }
              });
              return { records, skipped };
            },
          ))
            yield batch as unknown as B;
          return;
        }
        case 'events': {
          // Oldest first from the id after the cursor (the last id written).
          let after = typeof cursor === 'number' ? cursor : 0;
          for (;;) {
            const { entries, length } = await listRange(eventsKey, after + 1, after + batchSize);
            if (entries.length === 0) break;
            const records = entries.map((text, i) => eventRecord(text, after + 1 + i, length));
            after += entries.length;
            const done = after >= length;
            yield { records, cursor: done ? 'done' : after, scanned: records.length } as unknown as B;
            if (done) return;
          }
          yield { records: [], cursor: 'done', scanned: 0 } as unknown as B;
          return;
        }
        case 'audit': {
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
            const key = `${p}${AUDIT_LISTS[list]}`;
            let after = list === fromList ? fromPosition : 0;
            for (;;) {
              const { entries, length } = await listRange(key, after + 1, after + batchSize);
              if (entries.length === 0) break;
              const records: AuditRecord[] = [];
              const skipped: Record<string, number> = {};
              entries.forEach((text, i) => {
                const record = auditRecord(text, auditId(list, after + 1 + i));
                if (record) records.push(record);
                else add(skipped, SKIP_REASONS.unreadableAudit);
              });
              after += entries.length;
              yield {
                records,
                cursor: auditId(list, after),
                scanned: entries.length,
                skipped,
              } as unknown as B;
              if (after >= length) break;
            }
          }
          return;
        }
        default:
          return;
      }
    },

    async fetch<S extends StoreName>(store: S, ids: string[]): Promise<(RecordOf[S] | undefined)[]> {
      if (ids.length === 0) return [];
      type R = (RecordOf[S] | undefined)[];
      switch (store) {
        case 'kv': {
          const kinds = ids.map((id) => classifyLegacyKey(id));
          const wanted = ids.filter((_, i) => kinds[i]!.store === 'kv');
          const reads = await readStrings(wanted.map((id) => `${p}${id}`));
          const byId = new Map<string, KvRecord | undefined>();
          wanted.forEach((id, i) => {
            const kind = classifyLegacyKey(id) as {
              family: 'active' | 'capabilities' | 'result' | 'command';
            };
            byId.set(id, kvRecord(id, kind.family, reads[i]!));
          });
          return ids.map((id) => byId.get(id)) as R;
        }
        case 'sessions': {
          const wanted = ids.filter((id) => classifyLegacyKey(`session:${id}`).store === 'sessions');
          const reads = await readStrings(wanted.map((id) => `${sessionHead}${id}`));
          const byCorrelation = await correlations();
          const byId = new Map<string, SessionRecord>();
          wanted.forEach((id, i) => {
            const r = sessionRecord(id, reads[i]!, byCorrelation);
            if ('record' in r) byId.set(id, r.record);
          });
          return ids.map((id) => byId.get(id)) as R;
        }
        case 'tokens': {
          const keys = ids.map(tokenKey);
          const wanted = keys.filter((k): k is string => k !== undefined);
          const reads = await readStrings(wanted.map((k) => `${p}${k}`));
          const byKey = new Map<string, TokenRecord>();
          wanted.forEach((key, i) => {
            const r = tokenRecord(key, reads[i]!);
            if ('record' in r) byKey.set(key, r.record);
          });
          return keys.map((k) => (k === undefined ? undefined : byKey.get(k))) as R;
        }
        case 'events': {
          const pipeline = pipelineOn(undefined).llen(eventsKey);
          const positions = ids.map((pid) => {
            const [channel, id] = splitPairId(pid);
            return channel === SESSION_EVENTS && /^[1-9]\d*$/.test(id) ? Number(id) : undefined;
          });
          for (const position of positions) if (position !== undefined) pipeline.lindex(eventsKey, -position);
          const replies = await execAll(pipeline);
          for (const [error] of replies) if (error) throw error;
          const length = Number(replies[0]![1]);
          let next = 1;
          return positions.map((position) => {
            if (position === undefined) return undefined;
            const text = replies[next++]![1] as string | null;
            return text === null ? undefined : eventRecord(text, position, length);
          }) as R;
        }
        case 'audit':
          throw new Error('audit entries are matched by content, not fetched by id');
        default:
          return ids.map(() => undefined) as R;
      }
    },

    async check() {
      try {
        await client.ping();
      } catch (error) {
        throw new DataMigrationInputError(
          `cannot reach the legacy Redis at ${options.name}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      // The well-known keys must have the legacy types: anything else is not a legacy database.
      const expected: [string, string][] = [
        [eventsKey, 'list'],
        ...AUDIT_LISTS.map((list): [string, string] => [`${p}${list}`, 'list']),
        [`${p}sessions:active`, 'set'],
      ];
      for (const [key, type] of expected) {
        const actual = await client.type(key);
        if (actual !== 'none' && actual !== type) {
          throw new DataMigrationInputError(
            `${options.name} does not hold the upstream Kubently layout: ${key} is a ${actual}, not a ${type}` +
              (p === '' ? '' : ` (prefix ${JSON.stringify(p)})`),
          );
        }
      }
    },

    async close() {
      // The caller owns the client.
    },
  };
  return source;
}
