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
  const view = (r: SessionRecord): Session => ({
    sessionId: r.sessionId,
    clusterId: r.clusterId,
    userId: r.userId,
    correlationId: r.correlationId,
    serviceIdentity: r.serviceIdentity,
    data: parseJson(r.dataJson) as Session['data'],
    createdAt: iso(r.createdAt),
    lastActivity: iso(r.lastActivity),
    expiresAt: iso(r.expiresAt),
  });
  const liveWhere = (match: (r: SessionRecord) => boolean) => {
    const now = Date.now();
    return [...data.values()]
      .filter((r) => isLive(r, now) && match(r))
      .sort((a, b) => a.createdAt - b.createdAt || a.sessionId.localeCompare(b.sessionId))
      .map(view);
  };
  const live = (id: string) => {
    const r = data.get(id);
    return r && isLive(r, Date.now()) ? r : undefined;
  };

  const driver: SessionDriver = {
    async create(s) {
      const now = Date.now();
      const t = s.times;
      const record: SessionRecord = {
        sessionId: s.sessionId,
        clusterId: s.clusterId,
        userId: s.userId,
        correlationId: s.correlationId,
        serviceIdentity: s.serviceIdentity,
        dataJson: s.dataJson,
        createdAt: t?.createdAtMs ?? now,
        lastActivity: t?.lastActivityMs ?? now,
        expiresAt: t?.expiresAtMs ?? now + s.ttlMs,
        ttlMs: s.ttlMs,
      };
      data.set(record.sessionId, record);
      return view(record);
    },
    async get(id) {
      const r = live(id);
      return r && view(r);
    },
    async keepAlive(id, ttlMs, times) {
      const r = live(id);
      if (!r) return undefined;
      const now = Date.now();
      r.lastActivity = times?.lastActivityMs ?? now;
      r.expiresAt = times?.expiresAtMs ?? now + (ttlMs ?? r.ttlMs);
      return view(r);
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
      for (const r of data.values()) {
        if (!isLive(r, now) || (after !== undefined && compareBytes(r.clusterId, after) <= 0)) continue;
        if (within === undefined || matchesAny(within, r.clusterId)) clusters.add(r.clusterId);
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
    let q = queues.get(name);
    if (!q) {
      q = { messages: new Map(), seq: 0, dedup: new Map(), wakeups: new Set() };
      queues.set(name, q);
    }
    return q;
  };
  const kill = (m: Message, now: number) => {
    m.state = 'dead';
    m.receipt = null;
    m.diedAt = now;
  };
  /** Ends expired leases: back to waiting, or dead when attempts are spent. */
  const settle = (q: QueueState, now: number) => {
    for (const m of q.messages.values()) {
      if (m.state === 'inflight' && m.dueAt <= now) {
        // It died when its last lease ended, not when this call noticed.
        if (m.attempts >= maxAttempts) kill(m, m.dueAt);
        // The receipt stays valid until the next delivery replaces it: a late ack still counts.
        else m.state = 'waiting';
      }
    }
  };
  const wake = (q: QueueState) => {
    for (const wakeup of q.wakeups) wakeup();
  };
  const leased = (q: QueueState, id: string, receipt: string): Message => {
    const m = q.messages.get(id);
    if (!m) throw new NotFoundError(`message ${id} not found`);
    // A lease that ended is still honoured until the message is delivered again (or dies).
    if (m.state === 'dead' || m.receipt === null || m.receipt !== receipt) {
      throw new ConflictError(`receipt for message ${id} is stale: the lease ended`);
    }
    return m;
  };
  const take = (q: QueueState, max: number, visibilityMs: number): ReceivedMessage[] => {
    const now = Date.now();
    settle(q, now);
    const visible = [...q.messages.values()]
      .filter((m) => m.state === 'waiting' && m.dueAt <= now)
      .sort((a, b) => a.seq - b.seq)
      .slice(0, max);
    return visible.map((m) => {
      m.state = 'inflight';
      m.attempts += 1;
      m.dueAt = now + visibilityMs;
      m.receipt = randomUUID();
      return {
        id: m.id,
        receipt: m.receipt,
        payload: parseJson(m.json),
        attempts: m.attempts,
        enqueuedAt: iso(m.enqueuedAt),
      };
    });
  };
  /** Earliest moment something changes without a send: a delay passing or a lease ending. */
  const nextDue = (q: QueueState): number => {
    let next = Number.POSITIVE_INFINITY;
    for (const m of q.messages.values()) if (m.state !== 'dead' && m.dueAt < next) next = m.dueAt;
    return next;
  };

  const driver: QueueDriver = {
    async send(queue, json, delayMs, dedupId) {
      const q = stateOf(queue);
      const now = Date.now();
      if (dedupId !== undefined) {
        const seen = q.dedup.get(dedupId);
        if (seen && seen.expiresAt > now) return { id: seen.id, duplicate: true };
      }
      const id = randomUUID();
      q.seq += 1;
      q.messages.set(id, {
        id,
        json,
        seq: q.seq,
        enqueuedAt: now,
        attempts: 0,
        state: 'waiting',
        dueAt: now + delayMs,
        receipt: null,
        diedAt: 0,
      });
      if (dedupId !== undefined) q.dedup.set(dedupId, { id, expiresAt: now + dedupWindowMs });
      wake(q);
      return { id, duplicate: false };
    },
    async receive(queue, max, visibilityMs, waitMs) {
      const q = stateOf(queue);
      const deadline = Date.now() + waitMs;
      for (;;) {
        const got = take(q, max, visibilityMs);
        const now = Date.now();
        if (got.length > 0 || now >= deadline || closed) return got;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.max(1, Math.min(deadline, nextDue(q)) - now));
          timers.add(timer);
          function done() {
            clearTimeout(timer);
            timers.delete(timer);
            q.wakeups.delete(done);
            resolve();
          }
          q.wakeups.add(done);
        });
      }
    },
    async ack(queue, id, receipt) {
      const q = stateOf(queue);
      leased(q, id, receipt);
      q.messages.delete(id);
    },
    async nack(queue, id, receipt, delayMs) {
      const q = stateOf(queue);
      const m = leased(q, id, receipt);
      const now = Date.now();
      if (m.attempts >= maxAttempts) kill(m, now);
      else {
        m.state = 'waiting';
        m.receipt = null;
        m.dueAt = now + delayMs;
        wake(q);
      }
    },
    async extend(queue, id, receipt, visibilityMs) {
      const q = stateOf(queue);
      const m = leased(q, id, receipt);
      m.state = 'inflight';
      m.dueAt = Date.now() + visibilityMs;
      wake(q); // a shorter lease ends sooner: long polls recompute when to look again
    },
    async stats(queue) {
      const q = stateOf(queue);
      const now = Date.now();
      settle(q, now);
      const stats = { depth: 0, delayed: 0, inFlight: 0, dead: 0 };
      for (const m of q.messages.values()) {
        if (m.state === 'dead') stats.dead++;
        else if (m.state === 'inflight') stats.inFlight++;
        else {
          stats.depth++;
          if (m.dueAt > now) stats.delayed++;
        }
      }
      return stats;
    },
    async deadLetters(queue, limit) {
      const q = stateOf(queue);
      settle(q, Date.now());
      return [...q.messages.values()]
        .filter((m) => m.state === 'dead')
        .sort((a, b) => a.diedAt - b.diedAt || a.seq - b.seq)
        .slice(0, limit)
        .map(
          (m): DeadMessage => ({
            id: m.id,
            payload: parseJson(m.json),
            attempts: m.attempts,
            enqueuedAt: iso(m.enqueuedAt),
            diedAt: iso(m.diedAt),
          }),
        );
    },
    async redrive(queue, limit) {
      const q = stateOf(queue);
      const now = Date.now();
      const dead = await driver.deadLetters(queue, limit);
      for (const { id } of dead) {
        const m = q.messages.get(id);
        if (!m) continue;
        m.state = 'waiting';
        m.attempts = 0;
        m.dueAt = now;
      }
      if (dead.length > 0) wake(q);
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
    let c = channels.get(name);
    if (!c) {
      c = { seq: 0, events: [], subscribers: new Set() };
      channels.set(name, c);
    }
    return c;
  };
  const copy = (e: PublishedEvent): PublishedEvent => ({ ...e, message: structuredClone(e.message) as Json });

  const driver: EventDriver = {
    async publish(channel, json, maxHistory) {
      const c = channelOf(channel);
      c.seq += 1;
      const event: PublishedEvent = {
        id: formatEventId(c.seq),
        channel,
        message: parseJson(json),
        publishedAt: iso(Date.now()),
      };
      c.events.push(event);
      if (c.events.length > maxHistory) c.events.splice(0, c.events.length - maxHistory);
      // Delivery is asynchronous, as it is over a network.
      for (const subscriber of c.subscribers) queueMicrotask(() => void subscriber(copy(event)));
      return { id: event.id, publishedAt: event.publishedAt };
    },
    async last(channel) {
      return channels.get(channel)?.seq ?? 0;
    },
    async history(channel, after, limit) {
      const c = channels.get(channel);
      if (!c) return [];
      const afterId = formatEventId(after);
      return c.events
        .filter((e) => e.id > afterId)
        .slice(0, limit)
        .map(copy);
    },
    async subscribe(channel, onEvent) {
      const c = channelOf(channel);
      const subscriber: EventHandler = (e) => onEvent(e);
      c.subscribers.add(subscriber);
      return async () => {
        c.subscribers.delete(subscriber);
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
  const forget = (t: StoredToken) => {
    byId.delete(t.id);
    idByHash.delete(t.hash);
    if (t.issuerId !== null) issued.get(t.issuerId)?.delete(t.id);
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
      const t = id === undefined ? undefined : byId.get(id);
      return t && isLive(t, Date.now()) ? structuredClone(t) : undefined;
    },
    async findById(id) {
      const t = byId.get(id);
      return t && isLive(t, Date.now()) ? info(t) : undefined;
    },
    async revoke(id) {
      const now = Date.now();
      const root = byId.get(id);
      if (!root) return [];
      const revoked: string[] = [];
      const pending = [root];
      for (let t = pending.shift(); t; t = pending.shift()) {
        forget(t);
        if (isLive(t, now)) revoked.push(t.id);
        for (const child of issued.get(t.id) ?? []) {
          const c = byId.get(child);
          if (c) pending.push(c);
        }
        issued.delete(t.id);
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
    for (const t of byId.values()) {
      if (removed >= limit) break;
      if (!isLive(t, now)) {
        forget(t);
        issued.delete(t.id);
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
    async append(e) {
      const ms = Date.now();
      seq += 1;
      const entry = {
        id: `${String(ms).padStart(15, '0')}-${String(seq).padStart(10, '0')}`,
        at: iso(ms),
        identity: e.identity,
        action: e.action,
        resource: e.resource,
        correlationId: e.correlationId,
        outcome: e.outcome,
        details: e.detailsJson === null ? null : (parseJson(e.detailsJson) as AuditEntry['details']),
        ms,
      };
      entries.push(entry);
      trim();
      const { ms: _ms, ...view } = entry;
      return structuredClone(view);
    },
    async query(q) {
      const oldest = Date.now() - maxAgeMs;
      const since = Math.max(q.sinceMs ?? 0, oldest);
      const matching = entries.filter(
        (e) =>
          e.ms >= since &&
          (q.untilMs === undefined || e.ms < q.untilMs) &&
          (q.identity === undefined || e.identity === q.identity),
      );
      const ordered = q.order === 'asc' ? matching : matching.reverse();
      return ordered.slice(0, q.limit).map(({ ms: _ms, ...view }) => structuredClone(view));
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
    const r = byId.get(id);
    return r && isLive(r, now) ? r : undefined;
  };
  const view = (r: ConnectionRecord): Connection => ({
    connectionId: r.connectionId,
    identity: r.identity,
    scopes: [...r.scopes],
    resources: [...r.resources],
    tokenId: r.tokenId,
    tokenExpiresAt: r.tokenExpiresAt === null ? null : iso(r.tokenExpiresAt),
    connectedAt: iso(r.connectedAt),
    expiresAt: iso(r.expiresAt),
    channels: [...r.channels].sort(compareBytes),
  });
  const unlink = (id: string, channel: string) => {
    const subscribers = byChannel.get(channel);
    subscribers?.delete(id);
    if (subscribers?.size === 0) byChannel.delete(channel);
  };
  /** Forgets a connection and both directions of its subscriptions. */
  const drop = (r: ConnectionRecord) => {
    for (const channel of r.channels) unlink(r.connectionId, channel);
    const ofToken = byTokenId.get(r.tokenId);
    ofToken?.delete(r.connectionId);
    if (ofToken?.size === 0) byTokenId.delete(r.tokenId);
    byId.delete(r.connectionId);
  };
  const liveOfToken = (tokenId: string, now: number) =>
    [...(byTokenId.get(tokenId) ?? [])].filter((id) => live(id, now));

  const driver: ConnectionDriver = {
    // No await between the count and the insert: atomic in this process.
    async register(c, maxPerToken) {
      const now = Date.now();
      if (maxPerToken !== undefined) {
        const others = liveOfToken(c.tokenId, now).filter((id) => id !== c.connectionId);
        if (others.length >= maxPerToken) return 'full';
      }
      const old = byId.get(c.connectionId);
      if (old) drop(old);
      const record: ConnectionRecord = {
        connectionId: c.connectionId,
        identity: c.identity,
        scopes: [...c.scopes],
        resources: [...c.resources],
        tokenId: c.tokenId,
        tokenExpiresAt: c.tokenExpiresAtMs,
        connectedAt: now,
        expiresAt: now + c.ttlMs,
        channels: new Set(),
      };
      byId.set(c.connectionId, record);
      let ofToken = byTokenId.get(c.tokenId);
      if (!ofToken) {
        ofToken = new Set();
        byTokenId.set(c.tokenId, ofToken);
      }
      ofToken.add(c.connectionId);
      return view(record);
    },
    async get(id) {
      const r = live(id);
      return r && view(r);
    },
    async subscribe(id, channel, maxChannels) {
      const r = live(id);
      if (!r) return 'unknown';
      if (r.channels.has(channel)) return 'subscribed';
      if (r.channels.size >= maxChannels) return 'full';
      r.channels.add(channel);
      let subscribers = byChannel.get(channel);
      if (!subscribers) {
        subscribers = new Set();
        byChannel.set(channel, subscribers);
      }
      subscribers.add(id);
      return 'subscribed';
    },
    async unsubscribe(id, channel) {
      const r = byId.get(id);
      if (!r?.channels.delete(channel)) return false;
      unlink(id, channel);
      return isLive(r, Date.now());
    },
    async subscribers(channel, after, limit) {
      const now = Date.now();
      const ids = [...(byChannel.get(channel) ?? [])]
        .filter((id) => (after === undefined || compareBytes(id, after) > 0) && live(id, now))
        .sort(compareBytes);
      return { connectionIds: ids.slice(0, limit), more: ids.length > limit };
    },
    async remove(id) {
      const r = byId.get(id);
      if (!r) return false;
      drop(r);
      return isLive(r, Date.now());
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
    for (const r of byId.values()) {
      if (removed >= limit) break;
      if (!isLive(r, now)) {
        drop(r);
        removed++;
      }
    }
    return removed;
  };
  return { driver, sweep };
}
