/**
 * The in-process backend: the reference semantics of the contract, for unit tests and quick
 * experiments. Everything lives in this process and is lost with it. Values are kept as JSON
 * text so callers never share objects with the store.
 */
import { randomUUID } from 'node:crypto';
import type { StorageConfig } from '../../config/index.js';
import { ConflictError, NotFoundError } from '../../errors.js';
import { matchesAny } from '../../glob.js';
import type {
  AuditDriver,
  ConnectionDriver,
  Driver,
  EventDriver,
  Expiry,
  KvDriver,
  QueueDriver,
  SessionDriver,
  StoredToken,
  TokenDriver,
} from '../driver.js';
import { compareBytes, formatEventId, isoTime as iso } from '../driver.js';
import { covers } from '../lineage.js';
import { pageOf, tokenPosition } from '../paging.js';
import type {
  AuditEntry,
  Connection,
  DeadMessage,
  EventHandler,
  Json,
  PublishedEvent,
  ReceivedMessage,
  Session,
  TokenInfo,
} from '../types.js';
import { parseJson } from '../validate.js';
import { memoryConsumers } from './consumers.js';

const deadlineOf = (expiry: Expiry, now: number) => ('ttlMs' in expiry ? now + expiry.ttlMs : expiry.atMs);

export function createMemoryDriver(config: StorageConfig): Driver {
  const kv = memoryKv();
  const sessions = memorySessions();
  const queues = memoryQueues(config);
  const events = memoryEvents();
  const tokens = memoryTokens();
  const audit = memoryAudit(config);
  const connections = memoryConnections();
  return {
    name: 'memory',
    kv: kv.driver,
    sessions: sessions.driver,
    queues: queues.driver,
    events: events.driver,
    tokens: tokens.driver,
    audit: audit.driver,
    connections: connections.driver,
    consumers: memoryConsumers(),
    async ping() {},
    async sweep(batchSize) {
      return {
        kv: kv.sweep(batchSize),
        sessions: sessions.sweep(batchSize),
        queues: queues.sweep(batchSize),
        events: 0,
        tokens: tokens.sweep(batchSize),
        audit: audit.sweep(batchSize),
        connections: connections.sweep(batchSize),
      };
    },
    async close() {
      queues.close();
    },
  };
}

/** Deletes up to `limit` entries of `map` for which `expired` holds; answers how many. */
function sweepMap<V>(map: Map<string, V>, expired: (value: V) => boolean, limit: number): number {
  let removed = 0;
  for (const [key, value] of map) {
    if (removed >= limit) break;
    if (expired(value)) {
      map.delete(key);
      removed++;
    }
  }
  return removed;
}

// ---------------------------------------------------------------------------------------

interface KvRecord {
  json: string;
  expiresAt: number | null;
}

function memoryKv() {
  const data = new Map<string, KvRecord>();
  const live = (key: string, now = Date.now()): KvRecord | undefined => {
    const record = data.get(key);
    if (record === undefined) return undefined;
    if (record.expiresAt !== null && record.expiresAt <= now) {
      data.delete(key);
      return undefined;
    }
    return record;
  };
  const write = (key: string, json: string, expiresAt: number | null, now: number) => {
    if (expiresAt !== null && expiresAt <= now) data.delete(key);
    else data.set(key, { json, expiresAt });
  };

  const driver: KvDriver = {
    async get(key) {
      const record = live(key);
      return record && parseJson(record.json);
    },
    async getEntry(key) {
      const record = live(key);
      if (!record) return undefined;
      return {
        value: parseJson(record.json),
        expiresAt: record.expiresAt === null ? null : iso(record.expiresAt),
      };
    },
    async set(key, json, expiry, condition) {
      const now = Date.now();
      const exists = live(key, now) !== undefined;
      if ((condition === 'nx' && exists) || (condition === 'xx' && !exists)) return false;
      write(key, json, expiry ? deadlineOf(expiry, now) : null, now);
      return true;
    },
    async delete(key) {
      return live(key) !== undefined && data.delete(key);
    },
    async exists(key) {
      return live(key) !== undefined;
    },
    async expire(key, expiry) {
      const now = Date.now();
      const record = live(key, now);
      if (!record) return false;
      write(key, record.json, expiry === null ? null : deadlineOf(expiry, now), now);
      return true;
    },
    async ttlMs(key) {
      const now = Date.now();
      const record = live(key, now);
      if (!record) return undefined;
      return record.expiresAt === null ? null : record.expiresAt - now;
    },
    async incr(key, by) {
      const record = live(key);
      let current = 0;
      if (record) {
        const value = parseJson(record.json);
        if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
          throw new ConflictError(`value of ${JSON.stringify(key)} is not an integer`);
        }
        current = value;
      }
      const next = current + by;
      if (!Number.isSafeInteger(next))
        throw new ConflictError(`incr of ${JSON.stringify(key)} would overflow`);
      data.set(key, { json: String(next), expiresAt: record ? record.expiresAt : null });
      return next;
    },
    async getMany(keys) {
      const now = Date.now();
      return keys.map((key) => {
        const record = live(key, now);
        return record && parseJson(record.json);
      });
    },
    async setMany(entries) {
      const now = Date.now();
      for (const { key, json, ttlMs } of entries)
        write(key, json, ttlMs === undefined ? null : now + ttlMs, now);
    },
  };
  const sweep = (limit: number) => {
    const now = Date.now();
    return sweepMap(data, (r) => r.expiresAt !== null && r.expiresAt <= now, limit);
  };
  return { driver, sweep };
}

// ---------------------------------------------------------------------------------------

interface SessionRecord {
  sessionId: string;
  clusterId: string;
  userId: string | null;
  correlationId: string | null;
  serviceIdentity: string | null;
  dataJson: string;
  createdAt: number;
  lastActivity: number;
  expiresAt: number;
  ttlMs: number;
}

function memorySessions() {
  const data = new Map<string, SessionRecord>();
  const isLive = (r: SessionRecord, now: number) => r.expiresAt > now;
  const view = (record: SessionRecord): Session => ({
    sessionId: record.sessionId,
    clusterId: record.clusterId,
    userId: record.userId,
    correlationId: record.correlationId,
    serviceIdentity: record.serviceIdentity,
    data: parseJson(record.dataJson) as Session['data'],
    createdAt: iso(record.createdAt),
    lastActivity: iso(record.lastActivity),
    expiresAt: iso(record.expiresAt),
  });
  const liveWhere = (match: (r: SessionRecord) => boolean) => {
    const now = Date.now();
    return [...data.values()]
      .filter((r) => isLive(r, now) && match(r))
      .sort((a, b) => a.createdAt - b.createdAt || a.sessionId.localeCompare(b.sessionId))
      .map(view);
  };
  const live = (id: string) => {
    const record = data.get(id);
    return record && isLive(record, Date.now()) ? record : undefined;
  };

  const driver: SessionDriver = {
    async create(input) {
      const now = Date.now();
      const times = input.times;
      const record: SessionRecord = {
        sessionId: input.sessionId,
        clusterId: input.clusterId,
        userId: input.userId,
        correlationId: input.correlationId,
        serviceIdentity: input.serviceIdentity,
        dataJson: input.dataJson,
        createdAt: times?.createdAtMs ?? now,
        lastActivity: times?.lastActivityMs ?? now,
        expiresAt: times?.expiresAtMs ?? now + input.ttlMs,
        ttlMs: input.ttlMs,
      };
      data.set(record.sessionId, record);
      return view(record);
    },
    async get(id) {
      const record = live(id);
      return record && view(record);
    },
    async keepAlive(id, ttlMs, times) {
      const record = live(id);
      if (!record) return undefined;
      const now = Date.now();
      record.lastActivity = times?.lastActivityMs ?? now;
      record.expiresAt = times?.expiresAtMs ?? now + (ttlMs ?? record.ttlMs);
      return view(record);
    },
    async end(id) {
      return live(id) !== undefined && data.delete(id);
    },
    async byCluster(clusterId) {
      return liveWhere((r) => r.clusterId === clusterId);
    },
    async byCorrelation(correlationId) {
      return liveWhere((r) => r.correlationId === correlationId);
    },
    async activeClusterPage(after, limit, within) {
      const now = Date.now();
      const clusters = new Set<string>();
      for (const record of data.values()) {
        if (!isLive(record, now) || (after !== undefined && compareBytes(record.clusterId, after) <= 0))
          continue;
        if (within === undefined || matchesAny(within, record.clusterId)) clusters.add(record.clusterId);
      }
      return pageOf([...clusters].sort(compareBytes), limit, (clusterId) => clusterId);
    },
    async isClusterActive(clusterId) {
      const now = Date.now();
      for (const r of data.values()) if (r.clusterId === clusterId && isLive(r, now)) return true;
      return false;
    },
  };
  const sweep = (limit: number) => {
    const now = Date.now();
    return sweepMap(data, (r) => !isLive(r, now), limit);
  };
  return { driver, sweep };
}

// ---------------------------------------------------------------------------------------

interface Message {
  id: string;
  json: string;
  seq: number;
  enqueuedAt: number;
  attempts: number;
  state: 'waiting' | 'inflight' | 'dead';
  /** waiting: when it becomes visible; inflight: when the lease ends. */
  dueAt: number;
  receipt: string | null;
  diedAt: number;
}

interface QueueState {
  messages: Map<string, Message>;
  seq: number;
  dedup: Map<string, { id: string; expiresAt: number }>;
  wakeups: Set<() => void>;
}

function memoryQueues(config: StorageConfig) {
  const queues = new Map<string, QueueState>();
  const maxAttempts = config.queues.maxAttempts;
  const dedupWindowMs = Math.round(config.queues.dedupWindow * 1000);
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const stateOf = (name: string): QueueState => {
    let state = queues.get(name);
    if (!state) {
      state = { messages: new Map(), seq: 0, dedup: new Map(), wakeups: new Set() };
      queues.set(name, state);
    }
    return state;
  };
  const kill = (message: Message, now: number) => {
    message.state = 'dead';
    message.receipt = null;
    message.diedAt = now;
  };
  /** Ends expired leases: back to waiting, or dead when attempts are spent. */
  const settle = (state: QueueState, now: number) => {
    for (const message of state.messages.values()) {
      if (message.state === 'inflight' && message.dueAt <= now) {
        // It died when its last lease ended, not when this call noticed.
        if (message.attempts >= maxAttempts) kill(message, message.dueAt);
        // The receipt stays valid until the next delivery replaces it: a late ack still counts.
        else message.state = 'waiting';
      }
    }
  };
  const wake = (state: QueueState) => {
    for (const wakeup of state.wakeups) wakeup();
  };
  const leased = (state: QueueState, id: string, receipt: string): Message => {
    const message = state.messages.get(id);
    if (!message) throw new NotFoundError(`message ${id} not found`);
    // A lease that ended is still honoured until the message is delivered again (or dies).
    if (message.state === 'dead' || message.receipt === null || message.receipt !== receipt) {
      throw new ConflictError(`receipt for message ${id} is stale: the lease ended`);
    }
    return message;
  };
  const take = (state: QueueState, max: number, visibilityMs: number): ReceivedMessage[] => {
    const now = Date.now();
    settle(state, now);
    const visible = [...state.messages.values()]
      .filter((m) => m.state === 'waiting' && m.dueAt <= now)
      .sort((a, b) => a.seq - b.seq)
      .slice(0, max);
    return visible.map((message) => {
      message.state = 'inflight';
      message.attempts += 1;
      message.dueAt = now + visibilityMs;
      message.receipt = randomUUID();
      return {
        id: message.id,
        receipt: message.receipt,
        payload: parseJson(message.json),
        attempts: message.attempts,
        enqueuedAt: iso(message.enqueuedAt),
      };
    });
  };
  /** Earliest moment something changes without a send: a delay passing or a lease ending. */
  const nextDue = (state: QueueState): number => {
    let next = Number.POSITIVE_INFINITY;
    for (const m of state.messages.values()) if (m.state !== 'dead' && m.dueAt < next) next = m.dueAt;
    return next;
  };

  const driver: QueueDriver = {
    async send(queue, json, delayMs, dedupId) {
      const state = stateOf(queue);
      const now = Date.now();
      if (dedupId !== undefined) {
        const seen = state.dedup.get(dedupId);
        if (seen && seen.expiresAt > now) return { id: seen.id, duplicate: true };
      }
      const id = randomUUID();
      state.seq += 1;
      state.messages.set(id, {
        id,
        json,
        seq: state.seq,
        enqueuedAt: now,
        attempts: 0,
        state: 'waiting',
        dueAt: now + delayMs,
        receipt: null,
        diedAt: 0,
      });
      if (dedupId !== undefined) state.dedup.set(dedupId, { id, expiresAt: now + dedupWindowMs });
      wake(state);
      return { id, duplicate: false };
    },
    async receive(queue, max, visibilityMs, waitMs) {
      const state = stateOf(queue);
      const deadline = Date.now() + waitMs;
      for (;;) {
        const got = take(state, max, visibilityMs);
        const now = Date.now();
        if (got.length > 0 || now >= deadline || closed) return got;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.max(1, Math.min(deadline, nextDue(state)) - now));
          timers.add(timer);
          function done() {
            clearTimeout(timer);
            timers.delete(timer);
            state.wakeups.delete(done);
            resolve();
          }
          state.wakeups.add(done);
        });
      }
    },
    async ack(queue, id, receipt) {
      const state = stateOf(queue);
      leased(state, id, receipt);
      state.messages.delete(id);
    },
    async nack(queue, id, receipt, delayMs) {
      const state = stateOf(queue);
      const message = leased(state, id, receipt);
      const now = Date.now();
      if (message.attempts >= maxAttempts) kill(message, now);
      else {
        message.state = 'waiting';
        message.receipt = null;
        message.dueAt = now + delayMs;
        wake(state);
      }
    },
    async extend(queue, id, receipt, visibilityMs) {
      const state = stateOf(queue);
      const message = leased(state, id, receipt);
      message.state = 'inflight';
      message.dueAt = Date.now() + visibilityMs;
      wake(state); // a shorter lease ends sooner: long polls recompute when to look again
    },
    async stats(queue) {
      const state = stateOf(queue);
      const now = Date.now();
      settle(state, now);
      const stats = { depth: 0, delayed: 0, inFlight: 0, dead: 0 };
      for (const message of state.messages.values()) {
        if (message.state === 'dead') stats.dead++;
        else if (message.state === 'inflight') stats.inFlight++;
        else {
          stats.depth++;
          if (message.dueAt > now) stats.delayed++;
        }
      }
      return stats;
    },
    async deadLetters(queue, limit) {
      const state = stateOf(queue);
      settle(state, Date.now());
      return [...state.messages.values()]
        .filter((m) => m.state === 'dead')
        .sort((a, b) => a.diedAt - b.diedAt || a.seq - b.seq)
        .slice(0, limit)
        .map(
          (message): DeadMessage => ({
            id: message.id,
            payload: parseJson(message.json),
            attempts: message.attempts,
            enqueuedAt: iso(message.enqueuedAt),
            diedAt: iso(message.diedAt),
          }),
        );
    },
    async redrive(queue, limit) {
      const state = stateOf(queue);
      const now = Date.now();
      const dead = await driver.deadLetters(queue, limit);
      for (const { id } of dead) {
        const message = state.messages.get(id);
        if (!message) continue;
        message.state = 'waiting';
        message.attempts = 0;
        message.dueAt = now;
      }
      if (dead.length > 0) wake(state);
      return dead.length;
    },
  };
  const sweep = (limit: number) => {
    const now = Date.now();
    let removed = 0;
    for (const q of queues.values()) removed += sweepMap(q.dedup, (d) => d.expiresAt <= now, limit - removed);
    return removed;
  };
  const close = () => {
    closed = true;
    for (const timer of timers) clearTimeout(timer);
    for (const q of queues.values()) wake(q);
  };
  return { driver, sweep, close };
}

// ---------------------------------------------------------------------------------------

function memoryEvents() {
  const channels = new Map<
    string,
    { seq: number; events: PublishedEvent[]; subscribers: Set<EventHandler> }
  >();
  const channelOf = (name: string) => {
    let state = channels.get(name);
    if (!state) {
      state = { seq: 0, events: [], subscribers: new Set() };
      channels.set(name, state);
    }
    return state;
  };
  const copy = (e: PublishedEvent): PublishedEvent => ({ ...e, message: structuredClone(e.message) as Json });

  const driver: EventDriver = {
    async publish(channel, json, maxHistory) {
      const state = channelOf(channel);
      state.seq += 1;
      const event: PublishedEvent = {
        id: formatEventId(state.seq),
        channel,
        message: parseJson(json),
        publishedAt: iso(Date.now()),
      };
      state.events.push(event);
      if (state.events.length > maxHistory) state.events.splice(0, state.events.length - maxHistory);
      // Delivery is asynchronous, as it is over a network.
      for (const subscriber of state.subscribers) queueMicrotask(() => void subscriber(copy(event)));
      return { id: event.id, publishedAt: event.publishedAt };
    },
    async last(channel) {
      return channels.get(channel)?.seq ?? 0;
    },
    async history(channel, after, limit) {
      const state = channels.get(channel);
      if (!state) return [];
      const afterId = formatEventId(after);
      return state.events
        .filter((e) => e.id > afterId)
        .slice(0, limit)
        .map(copy);
    },
    async subscribe(channel, onEvent) {
      const state = channelOf(channel);
      const subscriber: EventHandler = (e) => onEvent(e);
      state.subscribers.add(subscriber);
      return async () => {
        state.subscribers.delete(subscriber);
      };
    },
  };
  return { driver };
}

// ---------------------------------------------------------------------------------------

function memoryTokens() {
  const byId = new Map<string, StoredToken>();
  const idByHash = new Map<string, string>();
  /** issuer id → ids of the tokens it issued. */
  const issued = new Map<string, Set<string>>();
  const isLive = (t: StoredToken, now: number) => t.expiresAt === null || Date.parse(t.expiresAt) > now;
  const info = ({ hash: _hash, ...rest }: StoredToken): TokenInfo => structuredClone(rest);
  const forget = (token: StoredToken) => {
    byId.delete(token.id);
    idByHash.delete(token.hash);
    if (token.issuerId !== null) issued.get(token.issuerId)?.delete(token.id);
  };

  const driver: TokenDriver = {
    async insert(token) {
      if (token.issuerId !== null) {
        const issuer = byId.get(token.issuerId);
        if (!issuer || !isLive(issuer, Date.now())) return false;
        const children = issued.get(token.issuerId) ?? new Set<string>();
        issued.set(token.issuerId, children.add(token.id));
      }
      byId.set(token.id, structuredClone(token));
      idByHash.set(token.hash, token.id);
      return true;
    },
    async findByHash(hash) {
      const id = idByHash.get(hash);
      const token = id === undefined ? undefined : byId.get(id);
      return token && isLive(token, Date.now()) ? structuredClone(token) : undefined;
    },
    async findById(id) {
      const token = byId.get(id);
      return token && isLive(token, Date.now()) ? info(token) : undefined;
    },
    async revoke(id) {
      const now = Date.now();
      const root = byId.get(id);
      if (!root) return [];
      const revoked: string[] = [];
      const pending = [root];
      for (let token = pending.shift(); token; token = pending.shift()) {
        forget(token);
        if (isLive(token, now)) revoked.push(token.id);
        for (const child of issued.get(token.id) ?? []) {
          const childToken = byId.get(child);
          if (childToken) pending.push(childToken);
        }
        issued.delete(token.id);
      }
      return isLive(root, now) ? revoked : [];
    },
    async page(after, limit, within) {
      const now = Date.now();
      const tokens = [...byId.values()]
        .filter((t) => isLive(t, now) && (after === undefined || compareBytes(tokenPosition(t), after) > 0))
        .filter((t) => within === undefined || covers(within, t.resources))
        .sort((a, b) => compareBytes(tokenPosition(a), tokenPosition(b)))
        .map(info);
      return pageOf(tokens, limit, tokenPosition);
    },
  };
  const sweep = (limit: number) => {
    const now = Date.now();
    let removed = 0;
    for (const token of byId.values()) {
      if (removed >= limit) break;
      if (!isLive(token, now)) {
        forget(token);
        issued.delete(token.id);
        removed++;
      }
    }
    return removed;
  };
  return { driver, sweep };
}

// ---------------------------------------------------------------------------------------

function memoryAudit(config: StorageConfig) {
  const entries: (AuditEntry & { ms: number })[] = [];
  const maxAgeMs = config.audit.maxAge * 1000;
  const maxEntries = config.audit.maxEntries;
  let seq = 0;
  const trim = () => {
    if (entries.length > maxEntries) entries.splice(0, entries.length - maxEntries);
  };
  const driver: AuditDriver = {
    async append(input) {
      const ms = Date.now();
      seq += 1;
      const entry = {
        id: `${String(ms).padStart(15, '0')}-${String(seq).padStart(10, '0')}`,
        at: iso(ms),
        identity: input.identity,
        action: input.action,
        resource: input.resource,
        correlationId: input.correlationId,
        outcome: input.outcome,
        details: input.detailsJson === null ? null : (parseJson(input.detailsJson) as AuditEntry['details']),
        ms,
      };
      entries.push(entry);
      trim();
      const { ms: _ms, ...view } = entry;
      return structuredClone(view);
    },
    async query(query) {
      const oldest = Date.now() - maxAgeMs;
      const since = Math.max(query.sinceMs ?? 0, oldest);
      const matching = entries.filter(
        (e) =>
          e.ms >= since &&
          (query.untilMs === undefined || e.ms < query.untilMs) &&
          (query.identity === undefined || e.identity === query.identity),
      );
      const ordered = query.order === 'asc' ? matching : matching.reverse();
      return ordered.slice(0, query.limit).map(({ ms: _ms, ...view }) => structuredClone(view));
    },
  };
  const sweep = (limit: number) => {
    const oldest = Date.now() - maxAgeMs;
    let removed = 0;
    while (removed < limit && entries.length > 0 && (entries[0] as { ms: number }).ms < oldest) {
      entries.shift();
      removed++;
    }
    return removed;
  };
  return { driver, sweep };
}

// ---------------------------------------------------------------------------------------

interface ConnectionRecord {
  connectionId: string;
  identity: string;
  scopes: Connection['scopes'];
  resources: string[];
  tokenId: string;
  tokenExpiresAt: number | null;
  connectedAt: number;
  expiresAt: number;
  channels: Set<string>;
}

function memoryConnections() {
  const byId = new Map<string, ConnectionRecord>();
  /** channel → ids of the connections subscribed to it (live or not yet swept). */
  const byChannel = new Map<string, Set<string>>();
  /** token id → ids of the connections opened with it (live or not yet swept). */
  const byTokenId = new Map<string, Set<string>>();
  const isLive = (r: ConnectionRecord, now: number) => r.expiresAt > now;
  const live = (id: string, now = Date.now()) => {
    const record = byId.get(id);
    return record && isLive(record, now) ? record : undefined;
  };
  const view = (record: ConnectionRecord): Connection => ({
    connectionId: record.connectionId,
    identity: record.identity,
    scopes: [...record.scopes],
    resources: [...record.resources],
    tokenId: record.tokenId,
    tokenExpiresAt: record.tokenExpiresAt === null ? null : iso(record.tokenExpiresAt),
    connectedAt: iso(record.connectedAt),
    expiresAt: iso(record.expiresAt),
    channels: [...record.channels].sort(compareBytes),
  });
  const unlink = (id: string, channel: string) => {
    const subscribers = byChannel.get(channel);
    subscribers?.delete(id);
    if (subscribers?.size === 0) byChannel.delete(channel);
  };
  /** Forgets a connection and both directions of its subscriptions. */
  const drop = (record: ConnectionRecord) => {
    for (const channel of record.channels) unlink(record.connectionId, channel);
    const ofToken = byTokenId.get(record.tokenId);
    ofToken?.delete(record.connectionId);
    if (ofToken?.size === 0) byTokenId.delete(record.tokenId);
    byId.delete(record.connectionId);
  };
  const liveOfToken = (tokenId: string, now: number) =>
    [...(byTokenId.get(tokenId) ?? [])].filter((id) => live(id, now));

  const driver: ConnectionDriver = {
    // No await between the count and the insert: atomic in this process.
    async register(input, maxPerToken) {
      const now = Date.now();
      if (maxPerToken !== undefined) {
        const others = liveOfToken(input.tokenId, now).filter((id) => id !== input.connectionId);
        if (others.length >= maxPerToken) return 'full';
      }
      const old = byId.get(input.connectionId);
      if (old) drop(old);
      const record: ConnectionRecord = {
        connectionId: input.connectionId,
        identity: input.identity,
        scopes: [...input.scopes],
        resources: [...input.resources],
        tokenId: input.tokenId,
        tokenExpiresAt: input.tokenExpiresAtMs,
        connectedAt: now,
        expiresAt: now + input.ttlMs,
        channels: new Set(),
      };
      byId.set(input.connectionId, record);
      let ofToken = byTokenId.get(input.tokenId);
      if (!ofToken) {
        ofToken = new Set();
        byTokenId.set(input.tokenId, ofToken);
      }
      ofToken.add(input.connectionId);
      return view(record);
    },
    async get(id) {
      const record = live(id);
      return record && view(record);
    },
    async subscribe(id, channel, maxChannels) {
      const record = live(id);
      if (!record) return 'unknown';
      if (record.channels.has(channel)) return 'subscribed';
      if (record.channels.size >= maxChannels) return 'full';
      record.channels.add(channel);
      let subscribers = byChannel.get(channel);
      if (!subscribers) {
        subscribers = new Set();
        byChannel.set(channel, subscribers);
      }
      subscribers.add(id);
      return 'subscribed';
    },
    async unsubscribe(id, channel) {
      const record = byId.get(id);
      if (!record?.channels.delete(channel)) return false;
      unlink(id, channel);
      return isLive(record, Date.now());
    },
    async subscribers(channel, after, limit) {
      const now = Date.now();
      const ids = [...(byChannel.get(channel) ?? [])]
        .filter((id) => (after === undefined || compareBytes(id, after) > 0) && live(id, now))
        .sort(compareBytes);
      return { connectionIds: ids.slice(0, limit), more: ids.length > limit };
    },
    async remove(id) {
      const record = byId.get(id);
      if (!record) return false;
      drop(record);
      return isLive(record, Date.now());
    },
    async byToken(tokenId, after, limit) {
      const ids = liveOfToken(tokenId, Date.now())
        .filter((id) => after === undefined || compareBytes(id, after) > 0)
        .sort(compareBytes);
      return { connectionIds: ids.slice(0, limit), more: ids.length > limit };
    },
    // A scan: the memory backend is for tests and experiments, where the registry is small.
    async withExpiredToken(limit) {
      const now = Date.now();
      return [...byId.values()]
        .filter((r) => r.tokenExpiresAt !== null && r.tokenExpiresAt <= now && isLive(r, now))
        .sort((a, b) => (a.tokenExpiresAt as number) - (b.tokenExpiresAt as number))
        .slice(0, limit)
        .map((r) => r.connectionId);
    },
  };
  const sweep = (limit: number) => {
    const now = Date.now();
    let removed = 0;
    for (const record of byId.values()) {
      if (removed >= limit) break;
      if (!isLive(record, now)) {
        drop(record);
        removed++;
      }
    }
    return removed;
  };
  return { driver, sweep };
}
