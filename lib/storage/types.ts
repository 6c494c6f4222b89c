/**
 * The storage contract. Every backend (memory, redis, postgresql, hybrid) implements these
 * interfaces with the same semantics, and the conformance suite in `test/conformance` holds
 * each of them to it.
 *
 * Conventions shared by every store:
 * - Names (kv keys, queue names, channel names, cluster ids, session ids) are opaque UTF-8
 *   strings of 1–255 bytes without control characters.
 * - Values are plain JSON (null, booleans, finite numbers, strings, arrays, plain objects),
 *   at most `limits.maxValueBytes` once serialised (default 256 KiB).
 * - Durations are seconds; fractions are allowed and kept to the millisecond.
 * - Times are ISO-8601 UTC strings (`2026-01-01T00:00:00.000Z`).
 * - Lookups answer `undefined` for a missing item; deletes answer whether something was
 *   deleted; operations that need a current lease (queue ack/nack/extend) throw.
 * - Bad arguments throw `ValidationError` naming the argument, before any I/O.
 * - An unreachable backend throws `BackendUnavailableError`.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

// ---------------------------------------------------------------------------------------
// kv

export interface SetOptions {
  /** Seconds until the key expires (> 0, ms precision). Without `ttl`/`expiresAt` the key never expires. */
  ttl?: number;
  /** Absolute deadline. A deadline already past writes nothing visible: the key is gone at once. */
  expiresAt?: Date;
  /** Write only if the key does not exist (an expired key does not exist). */
  nx?: boolean;
  /** Write only if the key exists. */
  xx?: boolean;
}

export interface KvEntry {
  value: Json;
  /** ISO time the key expires, or null when it never does. */
  expiresAt: string | null;
}

export interface KvSetManyEntry {
  key: string;
  value: Json;
  ttl?: number;
}

export interface KvStore {
  /** The value, or `undefined` when the key is missing or expired. Expiry is exact: a key is invisible from the moment its TTL ends, whether or not a sweep has run. */
  get(key: string): Promise<Json | undefined>;
  /** The value with its expiry in one round trip, or `undefined`. */
  getEntry(key: string): Promise<KvEntry | undefined>;
  /**
   * Writes `value`, replacing any previous value and its TTL. Answers `false` (writing nothing)
   * when `nx` is set and the key exists, or `xx` is set and it does not.
   */
  set(key: string, value: Json, options?: SetOptions): Promise<boolean>;
  /** Deletes the key; answers whether a live key was deleted. */
  delete(key: string): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  /**
   * Sets the key's TTL in seconds, or removes it with `null` (the key persists). Answers
   * `false` when the key is missing.
   */
  expire(key: string, ttl: number | null): Promise<boolean>;
  /** Sets an absolute deadline; a deadline already past deletes the key at once. */
  expireAt(key: string, at: Date): Promise<boolean>;
  /** Seconds left (ms precision), `null` when the key never expires, `undefined` when missing. */
  ttl(key: string): Promise<number | null | undefined>;
  /**
   * Adds `by` (a safe integer, default 1) to an integer value and answers the result. A missing
   * key starts at 0 and is created without TTL; an existing key keeps its TTL. A value that is
   * not an integer, or a result outside ±(2^53−1), throws `ConflictError` and changes nothing.
   */
  incr(key: string, by?: number): Promise<number>;
  /** Values in the order of `keys`, `undefined` for missing ones. At most 1000 keys. */
  getMany(keys: string[]): Promise<(Json | undefined)[]>;
  /** Writes every entry, all or none on a single-node backend. At most 1000 entries. */
  setMany(entries: KvSetManyEntry[]): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// pages

/**
 * A walk through a long listing, one page at a time. Pages are keyset (each starts after the
 * last item of the one before), so items that come or go during a walk never cause duplicates
 * or skip an item that stayed.
 */
export interface PageOptions {
  /** Most items on the page (1–1000, default 100). */
  limit?: number;
  /** The `cursor` the previous page answered (opaque); absent: the first page. */
  cursor?: string;
  /**
   * Resource globs (`*` matches any run of characters) bounding what the page holds, filtered
   * by the backend; absent: everything. What "within" means is said by each listing.
   */
  within?: string[];
}

export interface ClusterPage {
  clusters: string[];
  /**
   * Present when the walk is not over: pass it back as `cursor`. A filtered page may hold fewer
   * than `limit` items (even none) and still answer a cursor: each page bounds the work it does.
   */
  cursor?: string;
}

export interface TokenPage {
  tokens: TokenInfo[];
  /** As `ClusterPage.cursor`. */
  cursor?: string;
}

// ---------------------------------------------------------------------------------------
// sessions

export interface Session {
  sessionId: string;
  clusterId: string;
  userId: string | null;
  correlationId: string | null;
  serviceIdentity: string | null;
  data: JsonObject;
  createdAt: string;
  lastActivity: string;
  expiresAt: string;
}

export interface CreateSessionInput {
  clusterId: string;
  userId?: string;
  correlationId?: string;
  serviceIdentity?: string;
  data?: JsonObject;
  /** Seconds the session lives without a keep-alive (default `sessions.defaultTtl`, 300). */
  ttl?: number;
}

export interface SessionStore {
  create(input: CreateSessionInput): Promise<Session>;
  /** The live session, or `undefined` when missing, ended or expired. */
  get(sessionId: string): Promise<Session | undefined>;
  /**
   * Marks activity and sets the expiry to now + `ttl` (default: the ttl the session was created
   * with). Answers the updated session, or `undefined` when it is not live.
   */
  keepAlive(sessionId: string, ttl?: number): Promise<Session | undefined>;
  /** Ends the session at once; answers whether a live session was ended. */
  end(sessionId: string): Promise<boolean>;
  /** Live sessions of a cluster, oldest first. */
  byCluster(clusterId: string): Promise<Session[]>;
  /** Live sessions sharing a correlation id, oldest first. */
  byCorrelation(correlationId: string): Promise<Session[]>;
  /** Cluster ids with at least one live session, sorted by their UTF-8 bytes (every page, walked). */
  activeClusters(): Promise<string[]>;
  /**
   * One page of the cluster ids with a live session, sorted by their UTF-8 bytes; with
   * `within`, only those a glob of it matches. Keyset pages (see `PageOptions`).
   */
  activeClusterPage(options?: PageOptions): Promise<ClusterPage>;
  /** Whether the cluster has a live session. The hot path: one round trip. */
  isClusterActive(clusterId: string): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------
// queues

export interface SendOptions {
  /** Seconds before the message becomes visible (0 ≤ delay ≤ 7 days). */
  delay?: number;
  /**
   * Deduplication id: a second send with the same id within the dedup window
   * (`queues.dedupWindow`, default 300 s) enqueues nothing and answers the first message's id.
   */
  dedupId?: string;
}

export interface SendResult {
  id: string;
  /** True when `dedupId` matched an earlier send and nothing new was enqueued. */
  duplicate: boolean;
}

export interface ReceiveOptions {
  /** Most messages to lease (1–100, default 1). */
  max?: number;
  /** Seconds the lease lasts before the message is delivered again (default 30, at most 12 h). */
  visibilityTimeout?: number;
  /** Seconds to wait for a message when none is visible (0–20, default 0): a long poll, not a busy loop. */
  wait?: number;
}

export interface ReceivedMessage {
  id: string;
  /** Proves the lease; only the receipt of the latest delivery is accepted by ack/nack/extend. */
  receipt: string;
  payload: Json;
  /** Deliveries so far, this one included. */
  attempts: number;
  enqueuedAt: string;
}

export interface DeadMessage {
  id: string;
  payload: Json;
  attempts: number;
  enqueuedAt: string;
  diedAt: string;
}

export interface QueueStats {
  /** Messages waiting to be delivered (visible now or delayed). */
  depth: number;
  /** Of `depth`, those whose delay has not yet passed. */
  delayed: number;
  /** Messages leased and not yet acked. */
  inFlight: number;
  /** Messages moved to the dead letters after `maxAttempts` deliveries. */
  dead: number;
}

/**
 * At-least-once queues with visibility-timeout leases. Among visible messages, delivery is FIFO
 * by enqueue order (a message whose lease expired keeps its place). A message delivered
 * `queues.maxAttempts` times (default 5) without an ack moves to the dead letters when its last
 * lease ends or it is nacked.
 */
export interface QueueStore {
  send(queue: string, payload: Json, options?: SendOptions): Promise<SendResult>;
  receive(queue: string, options?: ReceiveOptions): Promise<ReceivedMessage[]>;
  /**
   * Deletes a leased message. Throws `NotFoundError` when the message no longer exists and
   * `ConflictError` when `receipt` is not the latest delivery's (the lease ended and the
   * message was delivered again, or it went to the dead letters). A lease that ended but whose
   * message has not been delivered again is still honoured: the work was done, so keep it.
   */
  ack(queue: string, id: string, receipt: string): Promise<void>;
  /**
   * Gives a leased message back: visible again after `delay` seconds (default 0), or to the
   * dead letters when its attempts are spent. Throws like `ack`.
   */
  nack(queue: string, id: string, receipt: string, options?: { delay?: number }): Promise<void>;
  /** Sets the lease to end `visibilityTimeout` seconds from now. Throws like `ack`. */
  extend(queue: string, id: string, receipt: string, visibilityTimeout: number): Promise<void>;
  stats(queue: string): Promise<QueueStats>;
  /** Dead letters, oldest death first (at most `limit`, 1–1000, default 100). */
  deadLetters(queue: string, options?: { limit?: number }): Promise<DeadMessage[]>;
  /** Moves up to `limit` dead letters back to the queue with attempts reset; answers how many. */
  redrive(queue: string, options?: { limit?: number }): Promise<number>;
}

// ---------------------------------------------------------------------------------------
// events

export interface PublishedEvent {
  /** Strictly increasing within a channel, in publish order; ids compare correctly as strings. */
  id: string;
  channel: string;
  message: Json;
  publishedAt: string;
}

export interface HistoryOptions {
  /** Only events after this id. Without it, history starts at the oldest retained event. */
  after?: string;
  /** Most events to answer (1–1000, default 100). */
  limit?: number;
}

export type EventHandler = (event: PublishedEvent) => void | Promise<void>;

export interface SubscribeOptions {
  /** Deliver retained events after this id first, then live ones, with no gap and no repeat. */
  after?: string;
}

/**
 * Channels with bounded history (`events.maxHistory`, per-channel overrides by glob) and live
 * subscriptions. Events reach a subscriber in id order, each once.
 */
export interface EventStore {
  publish(channel: string, message: Json): Promise<{ id: string; publishedAt: string }>;
  /** Retained events, oldest first. */
  history(channel: string, options?: HistoryOptions): Promise<PublishedEvent[]>;
  /**
   * Calls `handler` for every event published to `channel` from now on (or after
   * `options.after`), for long-lived processes. Answers once the subscription is active;
   * the returned function ends it.
   */
  subscribe(channel: string, handler: EventHandler, options?: SubscribeOptions): Promise<() => Promise<void>>;
}

// ---------------------------------------------------------------------------------------
// tokens

export const SCOPES = [
  'kv:read',
  'kv:write',
  'sessions:read',
  'sessions:write',
  'queues:send',
  'queues:receive',
  'events:publish',
  'events:subscribe',
  'admin',
] as const;
export type Scope = (typeof SCOPES)[number];

export interface TokenInfo {
  id: string;
  identity: string;
  scopes: Scope[];
  /** Glob patterns (`*` matches any run of characters) over the resource names a route touches. */
  resources: string[];
  createdAt: string;
  expiresAt: string | null;
  /**
   * The token that issued this one, or null when the bootstrap token or a caller without a
   * token (a tool, a test) issued it. A token is bounded by its issuer (expiry, scopes,
   * resources) and is revoked with it.
   */
  issuerId: string | null;
}

export interface IssuedToken extends TokenInfo {
  /** The secret. Shown once; only its SHA-256 hash is stored. */
  token: string;
}

export interface IssueTokenInput {
  identity: string;
  scopes: Scope[];
  /** Default `["*"]`. */
  resources?: string[];
  /**
   * Seconds until the token expires. Without it the token lives until revoked, or, when its
   * issuer expires, until its issuer's expiry.
   */
  ttl?: number;
  /**
   * The id of the (live) token issuing this one. The new token must stay within it: expire no
   * later (`ValidationError`), hold no scope it lacks and reach no resource outside its globs
   * (`ForbiddenError`); an issuer that is not live throws `UnauthorizedError`. The insert happens
   * only while the issuer is live, atomically with respect to a revoke of it, so no token
   * outlives the revoke of its issuer. The bootstrap token's id issues tokens without an issuer.
   */
  issuerId?: string;
}

export interface TokenStore {
  issue(input: IssueTokenInput): Promise<IssuedToken>;
  /** The live (unexpired, unrevoked) token with this id, or `undefined`. One lookup; never cached. */
  get(id: string): Promise<TokenInfo | undefined>;
  /**
   * The token's record when it is known, unexpired and unrevoked, else `undefined`. Looks the
   * SHA-256 of `token` up and compares hashes in constant time; never caches, so a revoked
   * token fails on the next call.
   */
  verify(token: string): Promise<TokenInfo | undefined>;
  /**
   * Revokes the token and every token it issued, transitively, at once. Answers the ids of the
   * live tokens revoked, the given one first; `[]` when no live token has that id.
   */
  revoke(id: string): Promise<string[]>;
  /** Live tokens, oldest first (every page, walked). */
  list(): Promise<TokenInfo[]>;
  /**
   * One page of the live tokens, oldest first (by creation time, then id); with `within`, only
   * tokens whose every resource glob lies within one of those globs (a token an admin limited
   * to `within` may manage). Keyset pages (see `PageOptions`).
   */
  page(options?: PageOptions): Promise<TokenPage>;
}

// ---------------------------------------------------------------------------------------
// audit

export interface AuditInput {
  /** Who: the token identity or service name. */
  identity: string;
  /** What: e.g. `kv.set`, `tokens.revoke`. */
  action: string;
  /** The resource acted on (key, queue, channel, cluster id). */
  resource?: string;
  correlationId?: string;
  outcome?: 'ok' | 'denied' | 'error';
  details?: JsonObject;
}

export interface AuditEntry {
  id: string;
  /** When, as recorded by the backend. */
  at: string;
  identity: string;
  action: string;
  resource: string | null;
  correlationId: string | null;
  outcome: 'ok' | 'denied' | 'error';
  details: JsonObject | null;
}

export interface AuditQuery {
  identity?: string;
  /** Entries at or after this time. */
  since?: Date;
  /** Entries before this time. */
  until?: Date;
  /** 1–1000, default 100. */
  limit?: number;
  /** `desc` (default): newest first. */
  order?: 'asc' | 'desc';
}

/**
 * Append-only audit log. Retention is bounded by age (`audit.maxAge`) and count
 * (`audit.maxEntries`): entries past either bound are never answered and are removed by the sweep.
 */
export interface AuditStore {
  append(entry: AuditInput): Promise<AuditEntry>;
  query(query?: AuditQuery): Promise<AuditEntry[]>;
}

// ---------------------------------------------------------------------------------------
// connections (the WebSocket relay's registry)

/** A WebSocket connection as the relay registered it at `$connect`. */
export interface Connection {
  connectionId: string;
  /** The identity, scopes and resources of the token the connection was opened with. */
  identity: string;
  scopes: Scope[];
  resources: string[];
  /**
   * The id of that token, looked up again on every frame. `''` for a registration made before
   * token ids were recorded: it can no longer be verified, so its next frame closes it.
   */
  tokenId: string;
  /** When that token expires (null: never); the cleanup closes the connection after it. */
  tokenExpiresAt: string | null;
  connectedAt: string;
  /** API Gateway closes a WebSocket after 2 h; the registry forgets it then at the latest. */
  expiresAt: string;
  /** Channels the connection is subscribed to, sorted by their UTF-8 bytes. */
  channels: string[];
}

export interface RegisterConnectionInput {
  connectionId: string;
  identity: string;
  scopes: Scope[];
  resources: string[];
  /** The id of the token the connection was opened with. */
  tokenId: string;
  /** When that token expires, as `TokenInfo.expiresAt` says it (ISO-8601); null or absent: never. */
  tokenExpiresAt?: string | null;
  /** Seconds the registration lives (> 0, at most 86400; default 7200, API Gateway's connection limit). */
  ttl?: number;
}

/** One page of connection ids, in a stable order (by their UTF-8 bytes). */
export interface ConnectionIdsPage {
  connectionIds: string[];
  /**
   * Pass back as `options.cursor` for the next page; absent on the last page. Opaque; pages are
   * keyset (after the last id answered), so connections that come or go during a walk never
   * cause duplicates or skip any that stayed.
   */
  cursor?: string;
}

/** A page of a channel's live subscribers. */
export type SubscribersPage = ConnectionIdsPage;

/**
 * Which WebSocket connections exist and which channels each one listens to: connection →
 * channels and channel → connections, kept consistent with each other. A registration expires
 * `ttl` seconds after `register` (subscribing does not extend it); an expired connection and
 * its subscriptions are invisible at once and removed by the sweep.
 */
export interface ConnectionStore {
  /**
   * Registers (or replaces, dropping its subscriptions) a connection. A token holds at most
   * `websocket.maxConnectionsPerToken` live connections (default 10): one more throws
   * `ConflictError`, registering nothing. The count and the insert are one atomic step, so a
   * burst of concurrent registrations never passes the limit.
   */
  register(input: RegisterConnectionInput): Promise<Connection>;
  /** The live connection with its channels, or `undefined`. */
  get(connectionId: string): Promise<Connection | undefined>;
  /**
   * Subscribes a live connection to a channel (idempotent). Answers `false`, subscribing
   * nothing, when the connection is unknown or expired. At most 100 channels per connection:
   * one more throws `ConflictError`.
   */
  subscribe(connectionId: string, channel: string): Promise<boolean>;
  /** Answers whether the (live) connection was subscribed. */
  unsubscribe(connectionId: string, channel: string): Promise<boolean>;
  /** One page of the channel's live subscribers (`limit` 1–1000, default 100). */
  subscribers(channel: string, options?: { cursor?: string; limit?: number }): Promise<SubscribersPage>;
  /** Forgets the connection and all its subscriptions; answers whether it was registered and live. */
  remove(connectionId: string): Promise<boolean>;
  /**
   * One page of the live connections opened with the token `tokenId` (`limit` 1–1000, default
   * 100): an index lookup, never a scan of every connection.
   */
  byToken(tokenId: string, options?: { cursor?: string; limit?: number }): Promise<ConnectionIdsPage>;
  /**
   * Up to `limit` (1–100000, default 1000) live connections whose token has expired, the
   * earliest expiry first (an index lookup). They stay registered until removed: closing the
   * socket is the caller's part.
   */
  withExpiredToken(options?: { limit?: number }): Promise<string[]>;
}

// ---------------------------------------------------------------------------------------
// queue consumers (push delivery over the WebSocket)

/** A connection waiting for a queue's messages, as `ConsumerStore.list` answers it. */
export interface QueueConsumer {
  connectionId: string;
  queue: string;
  /** Most unacknowledged deliveries at a time (1–100). */
  max: number;
  /** Seconds each delivery's lease lasts. */
  visibilityTimeout: number;
  /** Message ids delivered and not yet given back or acked whose lease has not ended, sorted. */
  inFlight: string[];
}

/** One delivery slot reserved by `claim`: lease one message with `visibilityTimeout`, then `bind` it. */
export interface ConsumerSlot {
  slot: string;
  connectionId: string;
  visibilityTimeout: number;
}

/** A message a consumer held when it stopped or its connection closed: to be given back. */
export interface HeldDelivery {
  queue: string;
  connectionId: string;
  id: string;
  receipt: string;
}

/**
 * Which connections wait for which queue, and what each one holds unacknowledged: the push
 * delivery's registry, beside the connection registry on the same backend. A delivery counts
 * against its consumer's `max` until it is released (ack, nack, give-back) or its lease ends.
 */
export interface ConsumerStore {
  /** Registers the connection as a consumer of the queue, or changes its `max` and `visibilityTimeout` (what it holds stays). */
  register(
    connectionId: string,
    queue: string,
    options?: { max?: number; visibilityTimeout?: number },
  ): Promise<void>;
  /**
   * Reserves one delivery slot, atomically, on the consumer of `queue` with the fewest deliveries
   * in flight that is below its `max` (ties: the one served longest ago); `undefined` when none
   * has room. A slot not bound within its consumer's visibility timeout frees itself.
   */
  claim(queue: string): Promise<ConsumerSlot | undefined>;
  /**
   * Binds a slot to the message leased for it. Answers `false`, binding nothing, when the slot is
   * gone (the consumer stopped or its connection closed meanwhile): give the message back.
   */
  bind(
    queue: string,
    slot: string,
    message: { id: string; receipt: string },
    visibilityTimeout: number,
  ): Promise<boolean>;
  /** Frees a slot or a message's delivery; answers the connection that held it, or `undefined`. */
  release(queue: string, slotOrId: string): Promise<string | undefined>;
  /** Moves a delivered message's lease end to `visibilityTimeout` seconds from now; answers whether it was held. */
  extend(queue: string, id: string, visibilityTimeout: number): Promise<boolean>;
  /** Ends the connection's consumer of `queue`; answers the messages it held (bound, lease not ended). */
  stop(connectionId: string, queue: string): Promise<HeldDelivery[]>;
  /** Ends every consumer of the connection; answers what they held. */
  removeConnection(connectionId: string): Promise<HeldDelivery[]>;
  /** Queues with at least one consumer, sorted by their UTF-8 bytes (at most 1000). */
  queues(): Promise<string[]>;
  /**
   * Connection ids with a consumer on any queue, sorted by their UTF-8 bytes: the page after
   * `after`, at most `limit` (default and most 1000). Whether each connection is still open is
   * the connection registry's to say: the cleanup ends the consumers of those that are not.
   */
  connections(options?: { after?: string; limit?: number }): Promise<string[]>;
  /** The consumers of a queue, by connection id. */
  list(queue: string): Promise<QueueConsumer[]>;
}

// ---------------------------------------------------------------------------------------
// the whole

export interface HealthCheck {
  ok: boolean;
  latencyMs: number;
  error?: string;
  /** What the backend cannot promise although it answers (a Redis that may lose acknowledged writes). */
  warnings?: string[];
}

export interface HealthReport {
  status: 'ok' | 'degraded' | 'down';
  backend: string;
  checks: Record<string, HealthCheck>;
}

export interface SweepOptions {
  /** Rows or keys removed per batch (default `ttl.batchSize`, 1000). */
  batchSize?: number;
}

/** What one sweep removed, per store. Reads never depend on it: expired data is filtered on read. */
export interface SweepReport {
  kv: number;
  sessions: number;
  queues: number;
  events: number;
  tokens: number;
  audit: number;
  connections: number;
  durationMs: number;
}

/** How much of one connection pool is in use, at the moment it is asked. */
export interface PoolUse {
  /** Connections running a statement, transaction or long poll now. */
  inUse: number;
  /** Open connections waiting for work. */
  idle: number;
  /** Callers waiting for a connection (PostgreSQL), or long polls polling because the cap was reached (Redis). */
  waiting: number;
  /** The pool's bound (`postgresql.pool_size`; Redis: `redis.max_connections` less the command and subscriber connections); null: unbounded. */
  max: number | null;
}

export interface Storage {
  readonly backend: string;
  readonly kv: KvStore;
  readonly sessions: SessionStore;
  readonly queues: QueueStore;
  readonly events: EventStore;
  readonly tokens: TokenStore;
  readonly audit: AuditStore;
  readonly connections: ConnectionStore;
  readonly consumers: ConsumerStore;
  health(): Promise<HealthReport>;
  /**
   * The connection pools this instance holds, by backend (`postgresql`: the pg or Neon pool;
   * `redis`: the long-poll connections; none for memory or PGlite). Synchronous and cheap: for
   * metrics after every request.
   */
  pools(): Partial<Record<'redis' | 'postgresql', PoolUse>>;
  /** Removes expired data in batches and answers the counts. Harmless to run at any time. */
  sweep(options?: SweepOptions): Promise<SweepReport>;
  /** Closes every connection this instance opened. */
  close(): Promise<void>;
}
