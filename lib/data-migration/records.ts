/**
 * What a data migration moves: one record type per store, in the shape both layouts can say
 * exactly (JSON values as their text, times as epoch milliseconds), and the comparison that
 * `validate` and the copy's own verification use.
 *
 * A source (this project's Redis layout, or the legacy upstream Kubently layout) reads its data
 * as these records; the PostgreSQL target writes and reads them back. Records never hold a
 * token's plaintext: tokens travel as their SHA-256.
 */
import { createHash } from 'node:crypto';

/** kv keys and queues the hybrid backend reserves in each backend: its bookkeeping, not data. */
export const RESERVED_KV_PREFIX = '__kst_hybrid:';
export const RESERVED_QUEUES: ReadonlySet<string> = new Set([
  '__kst_hybrid_journal',
  '__kst_hybrid_journal_append',
]);

/** The stores a migration moves, in the order `copy` moves them. */
export const STORES = [
  'kv',
  'sessions',
  'tokens',
  'connections',
  'queues',
  'dedup',
  'events',
  'audit',
] as const;
export type StoreName = (typeof STORES)[number];

/** What each store is called in reports. */
export const STORE_TITLES: Record<StoreName, string> = {
  kv: 'kv keys',
  sessions: 'sessions',
  tokens: 'tokens',
  connections: 'ws connections',
  queues: 'queue messages',
  dedup: 'queue dedup ids',
  events: 'events',
  audit: 'audit entries',
};

export interface KvRecord {
  key: string;
  /** The value's JSON text, byte for byte. */
  value: string;
  expiresAtMs: number | null;
}

export interface SessionRecord {
  sessionId: string;
  clusterId: string;
  userId: string | null;
  correlationId: string | null;
  serviceIdentity: string | null;
  /** The data object's JSON text. */
  data: string;
  /** The ttl a keep-alive without one renews by. */
  ttlMs: number;
  createdAtMs: number;
  lastActivityMs: number;
  expiresAtMs: number;
}

export interface TokenRecord {
  id: string;
  /** Hex SHA-256 of the secret: the only form a token is ever stored in. */
  hash: string;
  identity: string;
  scopes: string[];
  resources: string[];
  createdAtMs: number;
  expiresAtMs: number | null;
  /** The token that issued it (null: none, or a record written before lineage existed). */
  issuerId: string | null;
}

export interface ConnectionRecord {
  connectionId: string;
  identity: string;
  scopes: string[];
  resources: string[];
  /** '' for a registration made before connections recorded their token. */
  tokenId: string;
  tokenExpiresAtMs: number | null;
  connectedAtMs: number;
  expiresAtMs: number;
  /** Sorted. */
  channels: string[];
}

export interface QueueMessageRecord {
  queue: string;
  /** A UUID, kept: a dedup id or a consumer's log that names it still finds it. */
  id: string;
  /** The payload's JSON text. */
  payload: string;
  /** `leased`: delivered and not acked; its receipt is not carried over (the lease's holder cannot ack it on the target; it is delivered again when the lease ends). */
  state: 'ready' | 'leased' | 'dead';
  attempts: number;
  enqueuedAtMs: number;
  /** When a delay passes (ready) or the lease ends (leased). */
  visibleAtMs: number;
  diedAtMs: number | null;
  /** FIFO position within the queue on the source: messages are written in this order. */
  seq: number;
}

export interface DedupRecord {
  queue: string;
  dedupId: string;
  messageId: string;
  expiresAtMs: number;
}

export interface EventRecord {
  channel: string;
  /** The event's sequence number within its channel (kept: subscribers' cursors stay valid). */
  id: number;
  message: string;
  publishedAtMs: number;
  /** The channel's last id on the source when read: the target's sequence continues after it. */
  channelLastId: number;
}

export interface AuditRecord {
  /** The entry's id on the source (a Redis stream id, or a list position): the copy's resume point. */
  sourceId: string;
  atMs: number;
  identity: string;
  action: string;
  resource: string | null;
  correlationId: string | null;
  outcome: 'ok' | 'denied' | 'error';
  /** The details object's JSON text. */
  details: string | null;
}

export interface RecordOf {
  kv: KvRecord;
  sessions: SessionRecord;
  tokens: TokenRecord;
  connections: ConnectionRecord;
  queues: QueueMessageRecord;
  dedup: DedupRecord;
  events: EventRecord;
  audit: AuditRecord;
}
export type AnyRecord = RecordOf[StoreName];

/** Each store's record identity. */
const ID_OF: { [S in StoreName]: (record: RecordOf[S]) => string } = {
  kv: (record) => record.key,
  sessions: (record) => record.sessionId,
  tokens: (record) => record.id,
  connections: (record) => record.connectionId,
  queues: (record) => pairId(record.queue, record.id),
  dedup: (record) => pairId(record.queue, record.dedupId),
  events: (record) => pairId(record.channel, String(record.id)),
  audit: (record) => auditContentId(record),
};

/** The identity of a record within its store: what validate matches source and target by. */
export function idOf<S extends StoreName>(store: S, record: RecordOf[S]): string {
  const identify: (record: RecordOf[S]) => string = ID_OF[store];
  return identify(record);
}

/** Two names as one id; NUL cannot occur in a name. */
export function pairId(a: string, b: string): string {
  return `${a}\u0000${b}`;
}

export function splitPairId(id: string): [string, string] {
  const at = id.indexOf('\u0000');
  return [id.slice(0, at), id.slice(at + 1)];
}

/**
 * Audit entries get new ids on the target (its ids are a dense sequence that count retention
 * relies on), so source and target entries are matched by content: everything but the time,
 * which is compared within the tolerance.
 */
export function auditContentId(r: AuditRecord): string {
  return sha256(
    JSON.stringify([r.identity, r.action, r.resource, r.correlationId, r.outcome, canonicalJson(r.details)]),
  );
}

export type Difference =
  /** The same in every field (times within the tolerance). */
  | { kind: 'same' }
  /** A value or field differs: `field` names the first. */
  | { kind: 'changed'; field: string }
  /** Only an expiry or time differs, by more than the tolerance. */
  | { kind: 'ttl'; field: string; driftMs: number };

const same: Difference = { kind: 'same' };

/**
 * Compares a source record with the target's. Values are compared as canonical JSON (the text
 * can differ in whitespace or key order only when the legacy import re-serialises it); times
 * within `toleranceMs`, since a remaining TTL is read on one clock and written on another.
 */
export function compareRecords<S extends StoreName>(
  store: S,
  source: RecordOf[S],
  target: RecordOf[S],
  toleranceMs: number,
): Difference {
  const fields = comparedFields(store);
  const a = source as unknown as Record<string, unknown>;
  const b = target as unknown as Record<string, unknown>;
  for (const field of fields.exact) {
    if (!equalValue(a[field], b[field], fields.json.includes(field))) return { kind: 'changed', field };
  }
  for (const field of [...fields.times, ...(fields.activity ?? [])]) {
    const x = a[field] as number | null;
    const y = b[field] as number | null;
    if (x === null || y === null) {
      if (x !== y) return { kind: 'ttl', field, driftMs: Number.POSITIVE_INFINITY };
      continue;
    }
    const drift = Math.abs(x - y);
    const allowed = fields.activity?.includes(field)
      ? Math.max(toleranceMs, ACTIVITY_TOLERANCE_MS)
      : toleranceMs;
    if (drift > allowed) return { kind: 'ttl', field, driftMs: drift };
  }
  return same;
}

interface Fields {
  exact: string[];
  /** Of `exact`, those holding JSON text (compared canonically). */
  json: string[];
  times: string[];
  /**
   * Times a dual-write mirror sets to its own clock (a connection's start: the mirror replays
   * the registration when it runs, keeping the expiry exact): compared within
   * `ACTIVITY_TOLERANCE_MS` at least.
   */
  activity?: string[];
}

/** How far a mirror's own times may trail the source's: its lag under load stays well within. */
export const ACTIVITY_TOLERANCE_MS = 60_000;

function comparedFields(store: StoreName): Fields {
  switch (store) {
    case 'kv':
      return { exact: ['value'], json: ['value'], times: ['expiresAtMs'] };
    case 'sessions':
      // ttlMs is not compared: a dual-write mirror of a keep-alive sets it to the time left.
      return {
        exact: ['clusterId', 'userId', 'correlationId', 'serviceIdentity', 'data'],
        json: ['data'],
        times: ['expiresAtMs', 'lastActivityMs', 'createdAtMs'],
      };
    case 'tokens':
      return {
        exact: ['hash', 'identity', 'scopes', 'resources', 'issuerId'],
        json: [],
        times: ['expiresAtMs', 'createdAtMs'],
      };
    case 'connections':
      return {
        exact: ['identity', 'scopes', 'resources', 'tokenId', 'channels'],
        json: [],
        times: ['expiresAtMs', 'tokenExpiresAtMs'],
        activity: ['connectedAtMs'],
      };
    case 'queues':
      return {
        exact: ['queue', 'payload', 'state', 'attempts'],
        json: ['payload'],
        times: ['enqueuedAtMs', 'visibleAtMs', 'diedAtMs'],
      };
    case 'dedup':
      return { exact: ['messageId'], json: [], times: ['expiresAtMs'] };
    case 'events':
      return { exact: ['message'], json: ['message'], times: ['publishedAtMs'] };
    case 'audit':
      return { exact: [], json: [], times: ['atMs'] };
  }
}

function equalValue(a: unknown, b: unknown, json: boolean): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  if (a === b) return true;
  if (json && typeof a === 'string' && typeof b === 'string') return canonicalJson(a) === canonicalJson(b);
  return false;
}

/**
 * JSON text with object keys sorted and no whitespace; text that is not JSON is returned as is.
 * Numbers keep their digits where a double would round them (an id beyond 2^53 stays itself:
 * `9007199254740993` is not `9007199254740992`); other numbers are written as JavaScript does,
 * so `1.0` and `1` compare equal.
 */
export function canonicalJson(text: string | null): string | null {
  if (text === null) return null;
  try {
    return canonical(text);
  } catch {
    return text;
  }
}

function canonical(text: string): string {
  let i = 0;
  const space = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r'))
      i++;
  };
  const fail = (): never => {
    throw new SyntaxError(`not JSON at ${i}`);
  };
  const string = (): string => {
    const start = i;
    i++; // the opening quote
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (text[i] !== '"') fail();
    i++;
    // Escapes written one way (`\u0041` or `A`): decoded and encoded again.
    return JSON.stringify(JSON.parse(text.slice(start, i)) as string);
  };
  const number = (): string => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!match) return fail();
    i += match[0].length;
    const n = Number(match[0]);
    // Exact as a double (it prints back to the same value): the double's own text; else the digits.
    return Number.isFinite(n) && isExact(match[0], n) ? String(n) : match[0];
  };
  const value = (): string => {
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      const entries = new Map<string, string>();
      space();
      if (text[i] === '}') {
        i++;
        return '{}';
      }
      for (;;) {
        space();
        if (text[i] !== '"') fail();
        const key = string();
        space();
        if (text[i++] !== ':') fail();
        entries.delete(key); // a repeated key: the last one counts, as in JSON.parse
        entries.set(key, value());
        space();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i++] !== '}') fail();
        break;
      }
      const keys = [...entries.keys()].sort((x, y) => {
        const [a, b] = [JSON.parse(x) as string, JSON.parse(y) as string];
        return a < b ? -1 : a > b ? 1 : 0;
      });
      return `{${keys.map((k) => `${k}:${entries.get(k)}`).join(',')}}`;
    }
    if (c === '[') {
      i++;
      const items: string[] = [];
      space();
      if (text[i] === ']') {
        i++;
        return '[]';
      }
      for (;;) {
        items.push(value());
        space();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i++] !== ']') fail();
        break;
      }
      return `[${items.join(',')}]`;
    }
    if (c === '"') return string();
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return word;
      }
    }
    return number();
  };
  const out = value();
  space();
  if (i !== text.length) fail();
  return out;
}

/** Whether the digits say exactly the double they parse to (no digit is lost by rounding). */
function isExact(digits: string, n: number): boolean {
  const [mantissa = '', exponent = '0'] = digits.toLowerCase().replace('-', '').split('e');
  const significant = mantissa.replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  // Up to 15 significant digits always survive a double; beyond, compare with the double's own.
  if (significant.length <= 15) return true;
  const back = Math.abs(n)
    .toExponential(significant.length - 1)
    .split('e')[0]!
    .replace('.', '');
  return back === significant && Number.isFinite(Number(exponent));
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
