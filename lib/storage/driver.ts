/**
 * The backend seam. A backend implements these driver interfaces; `createStorage` wraps them
 * in the public stores (`facade.ts`), which validate every argument once, for every backend.
 * Drivers therefore receive checked, normalised input: names already validated, values as
 * JSON text within the size limit, durations in whole milliseconds.
 */
import type { DriverPage } from './paging.js';
import type {
  AuditEntry,
  Connection,
  DeadMessage,
  EventHandler,
  HealthCheck,
  HeldDelivery,
  Json,
  KvEntry,
  PoolUse,
  PublishedEvent,
  QueueConsumer,
  QueueStats,
  ReceivedMessage,
  Scope,
  SendResult,
  Session,
  SweepReport,
  TokenInfo,
} from './types.js';

export type { DriverPage } from './paging.js';

/** A relative TTL (measured on the backend's clock) or an absolute deadline, in ms. */
export type Expiry = { ttlMs: number } | { atMs: number };

export interface KvDriver {
  get(key: string): Promise<Json | undefined>;
  getEntry(key: string): Promise<KvEntry | undefined>;
  /** `expiry` undefined: no TTL. An `atMs` in the past: nothing visible remains (an old value is deleted). */
  set(
    key: string,
    json: string,
    expiry: Expiry | undefined,
    condition: 'nx' | 'xx' | undefined,
  ): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  /** `null` removes the TTL. */
  expire(key: string, expiry: Expiry | null): Promise<boolean>;
  /** Milliseconds left, null without TTL, undefined when missing. */
  ttlMs(key: string): Promise<number | null | undefined>;
  incr(key: string, by: number): Promise<number>;
  getMany(keys: string[]): Promise<(Json | undefined)[]>;
  setMany(entries: { key: string; json: string; ttlMs: number | undefined }[]): Promise<void>;
}

export interface NewSession {
  sessionId: string;
  clusterId: string;
  userId: string | null;
  correlationId: string | null;
  serviceIdentity: string | null;
  dataJson: string;
  ttlMs: number;
  /** The times another backend gave the session (a hybrid replay or mirror): written as they are. */
  times?: SessionTimes;
}

/**
 * A session's times as another backend holds them. A hybrid replay or dual-write mirror writes
 * them as they are rather than from this backend's clock at the moment the replay runs (which
 * may be seconds later: a mirror waiting for a pool connection).
 */
export interface SessionTimes {
  /** Creation time; absent: now. */
  createdAtMs?: number;
  lastActivityMs: number;
  expiresAtMs: number;
}

export interface SessionDriver {
  create(session: NewSession): Promise<Session>;
  get(sessionId: string): Promise<Session | undefined>;
  /** `ttlMs` undefined: the ttl the session was created with. `times`: set these instead (a replay). */
  keepAlive(sessionId: string, ttlMs: number | undefined, times?: SessionTimes): Promise<Session | undefined>;
  end(sessionId: string): Promise<boolean>;
  byCluster(clusterId: string): Promise<Session[]>;
  byCorrelation(correlationId: string): Promise<Session[]>;
  /**
   * Up to `limit` cluster ids with a live session after `after` (all when undefined), in byte
   * order, matched by a glob of `within` (all when undefined). `next`: the position (a cluster
   * id) the next page starts after, undefined when none is left; a filtering backend may stop
   * early (`PAGE_SCAN_BUDGET`) with fewer items and a `next`.
   */
  activeClusterPage(
    after: string | undefined,
    limit: number,
    within: readonly string[] | undefined,
  ): Promise<DriverPage<string>>;
  isClusterActive(clusterId: string): Promise<boolean>;
}

export interface QueueDriver {
  send(queue: string, json: string, delayMs: number, dedupId: string | undefined): Promise<SendResult>;
  receive(queue: string, max: number, visibilityMs: number, waitMs: number): Promise<ReceivedMessage[]>;
  ack(queue: string, id: string, receipt: string): Promise<void>;
  nack(queue: string, id: string, receipt: string, delayMs: number): Promise<void>;
  extend(queue: string, id: string, receipt: string, visibilityMs: number): Promise<void>;
  stats(queue: string): Promise<QueueStats>;
  deadLetters(queue: string, limit: number): Promise<DeadMessage[]>;
  redrive(queue: string, limit: number): Promise<number>;
}

export interface EventDriver {
  /** `maxHistory`: events this channel keeps (resolved from config by the facade). */
  publish(channel: string, json: string, maxHistory: number): Promise<{ id: string; publishedAt: string }>;
  /** The channel's latest sequence number (0 before its first event). */
  last(channel: string): Promise<number>;
  /** `after`: a sequence number (0 = from the start). */
  history(channel: string, after: number, limit: number): Promise<PublishedEvent[]>;
  /**
   * Live delivery. The driver calls `onEvent` for each published event, possibly out of order
   * or more than once around reconnects; the facade orders, deduplicates and fills gaps from
   * history. `onReconnect` is called after a dropped connection is back, so the facade can
   * catch up from history.
   */
  subscribe(channel: string, onEvent: EventHandler, onReconnect: () => void): Promise<() => Promise<void>>;
}

export interface StoredToken extends TokenInfo {
  /** Hex SHA-256 of the token. */
  hash: string;
}

/**
 * Tokens and their lineage: a token's `issuerId` names the token that issued it. A revoke
 * removes the token and every token below it; an insert under an issuer happens only while the
 * issuer is live, atomically with respect to that revoke (no token can be inserted under an
 * issuer whose revoke has begun and escape it).
 */
export interface TokenDriver {
  /**
   * Inserts the token. With an `issuerId`, only while that issuer is live: answers `false`,
   * inserting nothing, when it is not (revoked, expired or unknown).
   */
  insert(token: StoredToken): Promise<boolean>;
  /** The live (unexpired) token with this hash. */
  findByHash(hash: string): Promise<StoredToken | undefined>;
  /** The live token with this id, in one lookup. */
  findById(id: string): Promise<TokenInfo | undefined>;
  /**
   * Removes the token and every token it issued, transitively; answers the ids of those that
   * were live, `id` first (`[]` when `id` was not live).
   */
  revoke(id: string): Promise<string[]>;
  /**
   * Up to `limit` live tokens after the position `after` (see `tokenPosition`), oldest first;
   * with `within`, only tokens whose every resource glob, read as text, a glob of `within`
   * matches (`covers`). `next` as for `SessionDriver.activeClusterPage`.
   */
  page(
    after: string | undefined,
    limit: number,
    within: readonly string[] | undefined,
  ): Promise<DriverPage<TokenInfo>>;
}

export interface NewAuditEntry {
  identity: string;
  action: string;
  resource: string | null;
  correlationId: string | null;
  outcome: 'ok' | 'denied' | 'error';
  detailsJson: string | null;
  /**
   * When the entry happened on another backend (a hybrid mirror or replay). PostgreSQL keeps it;
   * Redis and memory stamp the append itself (their entries are ordered by time: a stream id
   * cannot go back).
   */
  atMs?: number;
}

export interface AuditDriver {
  append(entry: NewAuditEntry): Promise<AuditEntry>;
  query(query: {
    identity: string | undefined;
    sinceMs: number | undefined;
    untilMs: number | undefined;
    limit: number;
    order: 'asc' | 'desc';
  }): Promise<AuditEntry[]>;
}

export interface NewConnection {
  connectionId: string;
  identity: string;
  /** Checked and deduplicated. */
  scopes: Scope[];
  resources: string[];
  tokenId: string;
  /** Epoch ms; null: the token never expires. */
  tokenExpiresAtMs: number | null;
  ttlMs: number;
}

/** `subscribed`: now (or already) subscribed; `unknown`: no live connection; `full`: at `maxChannels`. */
export type SubscribeOutcome = 'subscribed' | 'unknown' | 'full';

/**
 * The WebSocket connection registry. Connection ids and channels compare as bytes of UTF-8
 * (Redis ZRANGEBYLEX, Postgres `COLLATE "C"`), which is the order of `channels` and of
 * `subscribers` on every backend. A connection is live while its expiry is after the backend's
 * now; every read filters on it.
 */
export interface ConnectionDriver {
  /**
   * Registers the connection, replacing any earlier registration and dropping its subscriptions.
   * Atomic with the count: answers `full`, changing nothing, when `maxPerToken` other live
   * connections hold its token (an earlier registration of the same id does not count).
   * Without `maxPerToken` nothing is counted (a replay of a registration already admitted).
   */
  register(connection: NewConnection, maxPerToken?: number): Promise<Connection | 'full'>;
  get(connectionId: string): Promise<Connection | undefined>;
  /** Atomic: the live check, the membership check and the channel count happen together. */
  subscribe(connectionId: string, channel: string, maxChannels: number): Promise<SubscribeOutcome>;
  /** Whether a live connection was subscribed (its subscription is removed either way). */
  unsubscribe(connectionId: string, channel: string): Promise<boolean>;
  /**
   * Up to `limit` live subscribers of `channel` whose ids come after `after` (all when
   * undefined), in byte order; `more` says whether any come after the last one answered.
   */
  subscribers(
    channel: string,
    after: string | undefined,
    limit: number,
  ): Promise<{ connectionIds: string[]; more: boolean }>;
  /** Forgets the connection and its subscriptions; answers whether it was live. */
  remove(connectionId: string): Promise<boolean>;
  /** Up to `limit` live connections of the token whose ids come after `after`, in byte order. */
  byToken(
    tokenId: string,
    after: string | undefined,
    limit: number,
  ): Promise<{ connectionIds: string[]; more: boolean }>;
  /** Up to `limit` live connections whose token expired by the backend's now, earliest first. */
  withExpiredToken(limit: number): Promise<string[]>;
}

/**
 * The queue consumers' registry (types.ts, `ConsumerStore`). Keys within a queue are message ids
 * and the facade's slot ids (`~` then a UUID). Times are epoch ms from the caller's clock: the
 * one function that claims, binds and extends reads it, so they agree with one another.
 */
export interface ConsumerDriver {
  register(queue: string, connectionId: string, max: number, visibilityMs: number): Promise<void>;
  claim(
    queue: string,
    slot: string,
    nowMs: number,
  ): Promise<{ connectionId: string; visibilityMs: number } | undefined>;
  bind(queue: string, slot: string, id: string, receipt: string, leaseEndsMs: number): Promise<boolean>;
  release(queue: string, key: string): Promise<string | undefined>;
  extend(queue: string, id: string, leaseEndsMs: number): Promise<boolean>;
  stop(queue: string, connectionId: string, nowMs: number): Promise<HeldDelivery[]>;
  removeConnection(connectionId: string, nowMs: number): Promise<HeldDelivery[]>;
  queues(limit: number): Promise<string[]>;
  /** Connection ids with a consumer, byte order, after `after` ('' from the start), at most `limit`. */
  connections(after: string, limit: number): Promise<string[]>;
  list(queue: string, nowMs: number): Promise<QueueConsumer[]>;
}

export interface Driver {
  readonly name: string;
  readonly kv: KvDriver;
  readonly sessions: SessionDriver;
  readonly queues: QueueDriver;
  readonly events: EventDriver;
  readonly tokens: TokenDriver;
  readonly audit: AuditDriver;
  readonly connections: ConnectionDriver;
  readonly consumers: ConsumerDriver;
  ping(): Promise<void>;
  /**
   * What does not stop the backend from serving but should be fixed (e.g. LISTEN behind a
   * transaction pooler: waits poll instead); `health()` reports it as `degraded`.
   */
  warnings?(): string[];
  /**
   * What the server cannot promise about acknowledged writes (no persistence, asynchronous
   * replicas…), in sentences for health checks; empty or absent: nothing known.
   */
  durabilityWarnings?(): Promise<string[]>;
  /** See `Storage.pools`. */
  pools?(): Partial<Record<'redis' | 'postgresql', PoolUse>>;
  sweep(batchSize: number): Promise<Omit<SweepReport, 'durationMs'>>;
  close(): Promise<void>;
}

export type HealthChecks = Record<string, HealthCheck>;

/** A time in ms (as a number or the decimal text a backend answers) as an ISO-8601 string. */
export function isoTime(ms: number | string): string {
  return new Date(Number(ms)).toISOString();
}

/** Orders strings by their UTF-8 bytes, as Redis (ZRANGEBYLEX) and Postgres (`COLLATE "C"`) do. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Event ids are sequence numbers per channel, zero-padded so they sort as strings. */
export const EVENT_ID_DIGITS = 16;
export function formatEventId(seq: number): string {
  return String(seq).padStart(EVENT_ID_DIGITS, '0');
}
