/**
 * The target's rows as migration records: what each store's SELECT (`selects.ts`) answers,
 * decoded in one place with its types checked, so a column of an unexpected type is an error
 * naming it rather than a wrong comparison.
 */
import type { AuditRecord, QueueMessageRecord, RecordOf, StoreName } from '../records.js';

export type Row = Record<string, unknown>;

function column(row: Row, name: string, want: string): never {
  throw new Error(`the target's column ${name} is not ${want}: ${JSON.stringify(row[name])}`);
}

const text = (row: Row, name: string): string => {
  const value = row[name];
  return typeof value === 'string' ? value : column(row, name, 'text');
};

const textOrNull = (row: Row, name: string): string | null => (row[name] == null ? null : text(row, name));

/** Numbers arrive as numbers or, for bigint, as text. */
const num = (row: Row, name: string): number => {
  const value = row[name];
  return typeof value === 'number' || typeof value === 'string'
    ? Number(value)
    : column(row, name, 'a number');
};

/** A bigint key as its text: it may exceed 2^53. */
const idText = (row: Row, name: string): string => {
  const value = row[name];
  return typeof value === 'number' || typeof value === 'string' || typeof value === 'bigint'
    ? String(value)
    : column(row, name, 'an id');
};

const numOrNull = (row: Row, name: string): number | null => (row[name] === null ? null : num(row, name));

const texts = (row: Row, name: string): string[] => {
  const value = row[name];
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
    ? value
    : column(row, name, 'a text array');
};

const QUEUE_STATES: readonly string[] = ['ready', 'leased', 'dead'] satisfies QueueMessageRecord['state'][];
const OUTCOMES: readonly string[] = ['ok', 'denied', 'error'] satisfies AuditRecord['outcome'][];

const isQueueState = (value: string): value is QueueMessageRecord['state'] => QUEUE_STATES.includes(value);
const isOutcome = (value: string): value is AuditRecord['outcome'] => OUTCOMES.includes(value);

function queueState(row: Row): QueueMessageRecord['state'] {
  const state = text(row, 'state');
  return isQueueState(state) ? state : column(row, 'state', 'a queue state');
}

function outcome(row: Row): AuditRecord['outcome'] {
  const value = text(row, 'outcome');
  return isOutcome(value) ? value : column(row, 'outcome', 'an audit outcome');
}

/** Each store's row (column names as `selects.ts` gives them) → its record. */
export const ROW_TO_RECORD: { [S in StoreName]: (row: Row) => RecordOf[S] } = {
  kv: (row) => ({ key: text(row, 'key'), value: text(row, 'value'), expiresAtMs: numOrNull(row, 'e') }),
  sessions: (row) => ({
    sessionId: text(row, 'session_id'),
    clusterId: text(row, 'cluster_id'),
    userId: textOrNull(row, 'user_id'),
    correlationId: textOrNull(row, 'correlation_id'),
    serviceIdentity: textOrNull(row, 'service_identity'),
    data: text(row, 'data'),
    ttlMs: num(row, 'ttl_ms'),
    createdAtMs: num(row, 'c'),
    lastActivityMs: num(row, 'l'),
    expiresAtMs: num(row, 'e'),
  }),
  tokens: (row) => ({
    id: text(row, 'id'),
    hash: text(row, 'hash'),
    identity: text(row, 'identity'),
    scopes: texts(row, 'scopes'),
    resources: texts(row, 'resources'),
    createdAtMs: num(row, 'c'),
    expiresAtMs: numOrNull(row, 'e'),
    issuerId: textOrNull(row, 'issuer_id'),
  }),
  connections: (row) => ({
    connectionId: text(row, 'connection_id'),
    identity: text(row, 'identity'),
    scopes: texts(row, 'scopes'),
    resources: texts(row, 'resources'),
    tokenId: text(row, 'token_id'),
    tokenExpiresAtMs: numOrNull(row, 'te'),
    connectedAtMs: num(row, 'c'),
    expiresAtMs: num(row, 'e'),
    channels: texts(row, 'channels'),
  }),
  queues: (row) => ({
    queue: text(row, 'queue'),
    id: text(row, 'id'),
    payload: text(row, 'payload'),
    state: queueState(row),
    attempts: num(row, 'attempts'),
    enqueuedAtMs: num(row, 'en'),
    visibleAtMs: num(row, 'v'),
    diedAtMs: numOrNull(row, 'd'),
    seq: num(row, 'seq'),
  }),
  dedup: (row) => ({
    queue: text(row, 'queue'),
    dedupId: text(row, 'dedup_id'),
    messageId: text(row, 'message_id'),
    expiresAtMs: num(row, 'e'),
  }),
  events: (row) => ({
    channel: text(row, 'channel'),
    id: num(row, 'id'),
    message: text(row, 'message'),
    publishedAtMs: num(row, 'p'),
    // No event_channels row: the channel's counter starts at 0.
    channelLastId: numOrNull(row, 'last_id') ?? 0,
  }),
  audit: (row) => ({
    sourceId: idText(row, 'id'),
    atMs: num(row, 'at'),
    identity: text(row, 'identity'),
    action: text(row, 'action'),
    resource: textOrNull(row, 'resource'),
    correlationId: textOrNull(row, 'correlation_id'),
    outcome: outcome(row),
    details: textOrNull(row, 'details'),
  }),
};

/** `row` of `store` as its record. */
export function rowToRecord<S extends StoreName>(store: S, row: Row): RecordOf[S] {
  const decode: (row: Row) => RecordOf[S] = ROW_TO_RECORD[store];
  return decode(row);
}
