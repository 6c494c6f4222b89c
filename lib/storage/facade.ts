/**
 * The public stores: argument validation and defaults, written once and shared by every
 * backend, in front of a backend's drivers.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { maxHistoryFor, type StorageConfig } from '../config/index.js';
import { BackendUnavailableError, ConflictError, UnauthorizedError, ValidationError } from '../errors.js';
import { createConsumerStore } from './consumers.js';
import type { Driver, EventDriver, Expiry, StoredToken } from './driver.js';
import { boundByIssuer } from './lineage.js';
import {
  checkPageOptions,
  DEFAULT_PAGE_LIMIT,
  decodeCursor,
  encodeCursor,
  MAX_PAGE_LIMIT,
  namePosition,
  tokenCursorPosition,
  walkPages,
} from './paging.js';
import type {
  AuditStore,
  ConnectionIdsPage,
  ConnectionStore,
  EventHandler,
  EventStore,
  HealthReport,
  KvStore,
  PublishedEvent,
  QueueStore,
  Scope,
  SessionStore,
  Storage,
  SweepReport,
  TokenInfo,
  TokenStore,
} from './types.js';
import { SCOPES } from './types.js';
import {
  checkBool,
  checkDate,
  checkDelay,
  checkGlobs,
  checkInt,
  checkName,
  checkOptionalName,
  checkOptions,
  checkTtl,
  describe,
  EVENT_ID_PATTERN,
  MAX_TTL_SECONDS,
  serializeJson,
  serializeJsonObject,
} from './validate.js';

const MAX_BATCH = 1000;
const MAX_VISIBILITY_SECONDS = 43_200;
const MAX_DELAY_SECONDS = 604_800;
const MAX_WAIT_SECONDS = 20;
const SET_OPTIONS = ['ttl', 'expiresAt', 'nx', 'xx'] as const;
/** API Gateway closes a WebSocket after 2 h: the registration's default lifetime. */
const CONNECTION_DEFAULT_TTL_SECONDS = 7200;
/** A registration lives at most a day (API Gateway's own limit is 2 h). */
export const CONNECTION_MAX_TTL_SECONDS = 86_400;
/** Channels one connection may subscribe to. */
export const MAX_CHANNELS_PER_CONNECTION = 100;

export function createFacade(driver: Driver, config: StorageConfig): Storage {
  const maxBytes = config.limits.maxValueBytes;

  const kv: KvStore = {
    get: async (key) => driver.kv.get(checkName('key', key)),
    getEntry: async (key) => driver.kv.getEntry(checkName('key', key)),
    async set(key, value, options) {
      checkName('key', key);
      const json = serializeJson('value', value, maxBytes);
      const o = checkOptions('options', options, SET_OPTIONS);
      const nx = o.nx === undefined ? false : checkBool('options.nx', o.nx);
      const xx = o.xx === undefined ? false : checkBool('options.xx', o.xx);
      if (nx && xx) throw new ValidationError('options', 'nx and xx cannot both be set');
      if (o.ttl !== undefined && o.expiresAt !== undefined) {
        throw new ValidationError('options', 'ttl and expiresAt cannot both be set');
      }
      let expiry: Expiry | undefined;
      if (o.ttl !== undefined) expiry = { ttlMs: checkTtl('options.ttl', o.ttl) };
      else if (o.expiresAt !== undefined) expiry = { atMs: checkDeadline('options.expiresAt', o.expiresAt) };
      return driver.kv.set(key, json, expiry, nx ? 'nx' : xx ? 'xx' : undefined);
    },
    delete: async (key) => driver.kv.delete(checkName('key', key)),
    exists: async (key) => driver.kv.exists(checkName('key', key)),
    async expire(key, ttl) {
      checkName('key', key);
      return driver.kv.expire(key, ttl === null ? null : { ttlMs: checkTtl('ttl', ttl) });
    },
    async expireAt(key, at) {
      checkName('key', key);
      return driver.kv.expire(key, { atMs: checkDeadline('at', at) });
    },
    async ttl(key) {
      const ms = await driver.kv.ttlMs(checkName('key', key));
      return ms === null || ms === undefined ? ms : ms / 1000;
    },
    async incr(key, by = 1) {
      checkName('key', key);
      checkInt('by', by, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      return driver.kv.incr(key, by);
    },
    async getMany(keys) {
      checkBatch('keys', keys);
      for (const [i, key] of keys.entries()) checkName(`keys[${i}]`, key);
      return keys.length === 0 ? Promise.resolve([]) : driver.kv.getMany(keys);
    },
    async setMany(entries) {
      checkBatch('entries', entries);
      const checked = entries.map((entry, i) => {
        const e = checkOptions(`entries[${i}]`, entry, ['key', 'value', 'ttl']);
        if (!('value' in (entry as object))) throw new ValidationError(`entries[${i}].value`, 'is required');
        return {
          key: checkName(`entries[${i}].key`, e.key),
          json: serializeJson(`entries[${i}].value`, e.value, maxBytes),
          ttlMs: e.ttl === undefined ? undefined : checkTtl(`entries[${i}].ttl`, e.ttl),
        };
      });
      if (checked.length > 0) await driver.kv.setMany(checked);
    },
  };

  const sessions: SessionStore = {
    async create(input) {
      const i = checkOptions('input', input, [
        'clusterId',
        'userId',
        'correlationId',
        'serviceIdentity',
        'data',
        'ttl',
      ]);
      if (input === undefined) throw new ValidationError('input', 'is required');
      return driver.sessions.create({
        sessionId: randomUUID(),
        clusterId: checkName('clusterId', i.clusterId),
        userId: checkOptionalName('userId', i.userId) ?? null,
        correlationId: checkOptionalName('correlationId', i.correlationId) ?? null,
        serviceIdentity: checkOptionalName('serviceIdentity', i.serviceIdentity) ?? null,
        dataJson: i.data === undefined ? '{}' : serializeJsonObject('data', i.data, maxBytes),
        ttlMs: i.ttl === undefined ? Math.round(config.sessions.defaultTtl * 1000) : checkTtl('ttl', i.ttl),
      });
    },
    get: async (id) => driver.sessions.get(checkName('sessionId', id)),
    async keepAlive(id, ttl) {
      checkName('sessionId', id);
      return driver.sessions.keepAlive(id, ttl === undefined ? undefined : checkTtl('ttl', ttl));
    },
    end: async (id) => driver.sessions.end(checkName('sessionId', id)),
    byCluster: async (clusterId) => driver.sessions.byCluster(checkName('clusterId', clusterId)),
    byCorrelation: async (correlationId) =>
      driver.sessions.byCorrelation(checkName('correlationId', correlationId)),
    activeClusters: async () =>
      walkPages((after) => driver.sessions.activeClusterPage(after, MAX_PAGE_LIMIT, undefined)),
    async activeClusterPage(options) {
      const { after, limit, within } = checkPageOptions(options, 'activeClusterPage()', namePosition);
      const { items, next } = await driver.sessions.activeClusterPage(after, limit, within);
      return next === undefined ? { clusters: items } : { clusters: items, cursor: encodeCursor(next) };
    },
    isClusterActive: async (clusterId) => driver.sessions.isClusterActive(checkName('clusterId', clusterId)),
  };

  const queues: QueueStore = {
    async send(queue, payload, options) {
      checkName('queue', queue);
      const json = serializeJson('payload', payload, maxBytes);
      const o = checkOptions('options', options, ['delay', 'dedupId']);
      const delayMs = o.delay === undefined ? 0 : checkDelay('options.delay', o.delay, MAX_DELAY_SECONDS);
      const dedupId = checkOptionalName('options.dedupId', o.dedupId);
      return driver.queues.send(queue, json, delayMs, dedupId);
    },
    async receive(queue, options) {
      checkName('queue', queue);
      const o = checkOptions('options', options, ['max', 'visibilityTimeout', 'wait']);
      const max = o.max === undefined ? 1 : checkInt('options.max', o.max, 1, 100);
      const visibilityMs =
        o.visibilityTimeout === undefined
          ? 30_000
          : checkTtl('options.visibilityTimeout', o.visibilityTimeout);
      if (visibilityMs > MAX_VISIBILITY_SECONDS * 1000) {
        throw new ValidationError(
          'options.visibilityTimeout',
          `must be at most ${MAX_VISIBILITY_SECONDS} seconds`,
        );
      }
      const waitMs = o.wait === undefined ? 0 : checkDelay('options.wait', o.wait, MAX_WAIT_SECONDS);
      return driver.queues.receive(queue, max, visibilityMs, waitMs);
    },
    async ack(queue, id, receipt) {
      checkLease(queue, id, receipt);
      return driver.queues.ack(queue, id, receipt);
    },
    async nack(queue, id, receipt, options) {
      checkLease(queue, id, receipt);
      const o = checkOptions('options', options, ['delay']);
      const delayMs = o.delay === undefined ? 0 : checkDelay('options.delay', o.delay, MAX_DELAY_SECONDS);
      return driver.queues.nack(queue, id, receipt, delayMs);
    },
    async extend(queue, id, receipt, visibilityTimeout) {
      checkLease(queue, id, receipt);
      const ms = checkTtl('visibilityTimeout', visibilityTimeout);
      if (ms > MAX_VISIBILITY_SECONDS * 1000) {
        throw new ValidationError('visibilityTimeout', `must be at most ${MAX_VISIBILITY_SECONDS} seconds`);
      }
      return driver.queues.extend(queue, id, receipt, ms);
    },
    stats: async (queue) => driver.queues.stats(checkName('queue', queue)),
    async deadLetters(queue, options) {
      checkName('queue', queue);
      const o = checkOptions('options', options, ['limit']);
      return driver.queues.deadLetters(
        queue,
        o.limit === undefined ? 100 : checkInt('options.limit', o.limit, 1, 1000),
      );
    },
    async redrive(queue, options) {
      checkName('queue', queue);
      const o = checkOptions('options', options, ['limit']);
      return driver.queues.redrive(
        queue,
        o.limit === undefined ? 100 : checkInt('options.limit', o.limit, 1, 1000),
      );
    },
  };

  const historyLimit = maxHistoryFor(config);
  const subscriptions = new Set<() => Promise<void>>();
  const events: EventStore = {
    async publish(channel, message) {
      checkName('channel', channel);
      const json = serializeJson('message', message, maxBytes);
      return driver.events.publish(channel, json, historyLimit(channel));
    },
    async history(channel, options) {
      checkName('channel', channel);
      const o = checkOptions('options', options, ['after', 'limit']);
      const after = o.after === undefined ? 0 : parseEventId('options.after', o.after);
      const limit = o.limit === undefined ? 100 : checkInt('options.limit', o.limit, 1, 1000);
      return driver.events.history(channel, after, limit);
    },
    async subscribe(channel, handler, options) {
      checkName('channel', channel);
      if (typeof handler !== 'function')
        throw new ValidationError('handler', `expected a function, got ${describe(handler)}`);
      const o = checkOptions('options', options, ['after']);
      const after = o.after === undefined ? undefined : parseEventId('options.after', o.after);
      const subscription = await subscribeInOrder(driver.events, channel, handler, after);
      // Closing the storage ends the subscription too (its catch-ups would otherwise retry for ever).
      const unsubscribe = async () => {
        subscriptions.delete(unsubscribe);
        await subscription();
      };
      subscriptions.add(unsubscribe);
      return unsubscribe;
    },
  };

  const bootstrap = bootstrapToken(config.auth.bootstrapTokenHash);
  /** The issuer of a new token; undefined for none (the bootstrap token issues without one). */
  const issuerOf = async (issuerId: string | undefined): Promise<TokenInfo | undefined> => {
    if (issuerId === undefined || issuerId === bootstrap?.info.id) return undefined;
    const issuer = await driver.tokens.findById(issuerId);
    if (!issuer) throw issuerGone(issuerId);
    return issuer;
  };
  const tokens: TokenStore = {
    async issue(input) {
      const i = checkOptions('input', input, ['identity', 'scopes', 'resources', 'ttl', 'issuerId']);
      if (input === undefined) throw new ValidationError('input', 'is required');
      const identity = checkName('identity', i.identity);
      const scopes = checkScopes(i.scopes);
      const resources = i.resources === undefined ? ['*'] : checkGlobs('resources', i.resources);
      const ttlMs = i.ttl === undefined ? undefined : checkTtl('ttl', i.ttl);
      const issuer = await issuerOf(checkOptionalName('issuerId', i.issuerId));
      const now = Date.now();
      const asked = ttlMs === undefined ? null : now + ttlMs;
      const expiresAtMs = issuer ? boundByIssuer(issuer, { scopes, resources, expiresAtMs: asked }) : asked;
      const token = `kbs_${randomBytes(32).toString('base64url')}`;
      const record: StoredToken = {
        id: randomUUID(),
        identity,
        scopes,
        resources,
        createdAt: new Date(now).toISOString(),
        expiresAt: expiresAtMs === null ? null : new Date(expiresAtMs).toISOString(),
        issuerId: issuer?.id ?? null,
        hash: hashToken(token),
      };
      // Refused when the issuer was revoked (or expired) since it was read.
      if (!(await driver.tokens.insert(record))) throw issuerGone(record.issuerId ?? '');
      const { hash: _hash, ...info } = record;
      return { ...info, token };
    },
    async get(id) {
      checkName('id', id);
      if (bootstrap && id === bootstrap.info.id) return { ...bootstrap.info };
      return driver.tokens.findById(id);
    },
    async verify(token) {
      // Bad input here is an unknown token, not a ValidationError: callers answer 401 either way.
      if (typeof token !== 'string' || token.length === 0 || token.length > 1024) return undefined;
      const hash = hashToken(token);
      if (bootstrap && hashesEqual(hash, bootstrap.hash)) return { ...bootstrap.info };
      const record = await driver.tokens.findByHash(hash);
      if (!record || !hashesEqual(hash, record.hash)) return undefined;
      if (record.expiresAt !== null && Date.parse(record.expiresAt) <= Date.now()) return undefined;
      const { hash: _hash, ...info } = record;
      return info;
    },
    revoke: async (id) => driver.tokens.revoke(checkName('id', id)),
    list: async () => walkPages((after) => driver.tokens.page(after, MAX_PAGE_LIMIT, undefined)),
    async page(options) {
      const { after, limit, within } = checkPageOptions(options, 'tokens.page()', tokenCursorPosition);
      const { items, next } = await driver.tokens.page(after, limit, within);
      return next === undefined ? { tokens: items } : { tokens: items, cursor: encodeCursor(next) };
    },
  };

  const audit: AuditStore = {
    async append(entry) {
      const e = checkOptions('entry', entry, [
        'identity',
        'action',
        'resource',
        'correlationId',
        'outcome',
        'details',
      ]);
      if (entry === undefined) throw new ValidationError('entry', 'is required');
      const outcome = e.outcome ?? 'ok';
      if (outcome !== 'ok' && outcome !== 'denied' && outcome !== 'error') {
        throw new ValidationError('entry.outcome', `must be ok, denied or error, got ${describe(outcome)}`);
      }
      return driver.audit.append({
        identity: checkName('entry.identity', e.identity),
        action: checkName('entry.action', e.action),
        resource: checkOptionalName('entry.resource', e.resource) ?? null,
        correlationId: checkOptionalName('entry.correlationId', e.correlationId) ?? null,
        outcome,
        detailsJson:
          e.details === undefined ? null : serializeJsonObject('entry.details', e.details, maxBytes),
      });
    },
    async query(query) {
      const q = checkOptions('query', query, ['identity', 'since', 'until', 'limit', 'order']);
      const order = q.order ?? 'desc';
      if (order !== 'asc' && order !== 'desc')
        throw new ValidationError('query.order', 'must be asc or desc');
      return driver.audit.query({
        identity: checkOptionalName('query.identity', q.identity),
        sinceMs: q.since === undefined ? undefined : checkDate('query.since', q.since).getTime(),
        untilMs: q.until === undefined ? undefined : checkDate('query.until', q.until).getTime(),
        limit: q.limit === undefined ? 100 : checkInt('query.limit', q.limit, 1, 1000),
        order,
      });
    },
  };

  const connections: ConnectionStore = {
    async register(input) {
      const i = checkOptions('input', input, [
        'connectionId',
        'identity',
        'scopes',
        'resources',
        'tokenId',
        'tokenExpiresAt',
        'ttl',
      ]);
      if (input === undefined) throw new ValidationError('input', 'is required');
      const connectionId = checkName('connectionId', i.connectionId);
      const identity = checkName('identity', i.identity);
      const scopes = checkScopes(i.scopes);
      if (i.resources === undefined) throw new ValidationError('resources', 'is required');
      const resources = checkGlobs('resources', i.resources);
      const tokenId = checkName('tokenId', i.tokenId);
      const tokenExpiresAtMs =
        i.tokenExpiresAt === undefined || i.tokenExpiresAt === null
          ? null
          : checkIsoTime('tokenExpiresAt', i.tokenExpiresAt);
      let ttlMs = CONNECTION_DEFAULT_TTL_SECONDS * 1000;
      if (i.ttl !== undefined) {
        ttlMs = checkTtl('ttl', i.ttl);
        if (ttlMs > CONNECTION_MAX_TTL_SECONDS * 1000) {
          throw new ValidationError(
            'ttl',
            `must be at most ${CONNECTION_MAX_TTL_SECONDS} seconds, got ${i.ttl}`,
          );
        }
      }
      const { maxConnectionsPerToken } = config.websocket;
      const registered = await driver.connections.register(
        { connectionId, identity, scopes, resources, tokenId, tokenExpiresAtMs, ttlMs },
        maxConnectionsPerToken,
      );
      if (registered === 'full') {
        throw new ConflictError(
          `token ${JSON.stringify(tokenId)} already holds ${maxConnectionsPerToken} open WebSocket connections, ` +
            'the most allowed (websocket.maxConnectionsPerToken): close one first',
        );
      }
      return registered;
    },
    get: async (connectionId) => driver.connections.get(checkName('connectionId', connectionId)),
    async subscribe(connectionId, channel) {
      checkName('connectionId', connectionId);
      checkName('channel', channel);
      const outcome = await driver.connections.subscribe(connectionId, channel, MAX_CHANNELS_PER_CONNECTION);
      if (outcome === 'full') {
        throw new ConflictError(
          `connection ${JSON.stringify(connectionId)} is subscribed to ${MAX_CHANNELS_PER_CONNECTION} channels, the most allowed`,
        );
      }
      return outcome === 'subscribed';
    },
    async unsubscribe(connectionId, channel) {
      checkName('connectionId', connectionId);
      checkName('channel', channel);
      return driver.connections.unsubscribe(connectionId, channel);
    },
    async subscribers(channel, options) {
      checkName('channel', channel);
      const o = checkOptions('options', options, ['cursor', 'limit']);
      const after =
        o.cursor === undefined
          ? undefined
          : decodeCursor('options.cursor', o.cursor, 'subscribers()', namePosition);
      const limit =
        o.limit === undefined ? DEFAULT_PAGE_LIMIT : checkInt('options.limit', o.limit, 1, MAX_PAGE_LIMIT);
      return idsPage(await driver.connections.subscribers(channel, after, limit));
    },
    remove: async (connectionId) => driver.connections.remove(checkName('connectionId', connectionId)),
    async byToken(tokenId, options) {
      checkName('tokenId', tokenId);
      const o = checkOptions('options', options, ['cursor', 'limit']);
      const after =
        o.cursor === undefined
          ? undefined
          : decodeCursor('options.cursor', o.cursor, 'byToken()', namePosition);
      const limit =
        o.limit === undefined ? DEFAULT_PAGE_LIMIT : checkInt('options.limit', o.limit, 1, MAX_PAGE_LIMIT);
      return idsPage(await driver.connections.byToken(tokenId, after, limit));
    },
    async withExpiredToken(options) {
      const o = checkOptions('options', options, ['limit']);
      const limit = o.limit === undefined ? 1000 : checkInt('options.limit', o.limit, 1, 100_000);
      return driver.connections.withExpiredToken(limit);
    },
  };

  return {
    backend: driver.name,
    kv,
    sessions,
    queues,
    events,
    tokens,
    audit,
    connections,
    consumers: createConsumerStore(driver.consumers),
    async health(): Promise<HealthReport> {
      const started = performance.now();
      try {
        await driver.ping();
        const latencyMs = round2(performance.now() - started);
        const warnings = driver.warnings?.() ?? [];
        const durability = (await driver.durabilityWarnings?.().catch(() => [])) ?? [];
        const check = {
          ok: true,
          latencyMs,
          ...(warnings.length > 0 ? { error: warnings.join('; ') } : {}),
          ...(durability.length > 0 ? { warnings: durability } : {}),
        };
        return {
          status: warnings.length > 0 ? 'degraded' : 'ok',
          backend: driver.name,
          checks: { [driver.name]: check },
        };
      } catch (error) {
        const latencyMs = round2(performance.now() - started);
        const message = error instanceof BackendUnavailableError ? error.message : 'not answering';
        return {
          status: 'down',
          backend: driver.name,
          checks: { [driver.name]: { ok: false, latencyMs, error: message } },
        };
      }
    },
    pools: () => driver.pools?.() ?? {},
    async sweep(options): Promise<SweepReport> {
      const o = checkOptions('options', options, ['batchSize']);
      const batchSize =
        o.batchSize === undefined
          ? config.ttl.batchSize
          : checkInt('options.batchSize', o.batchSize, 1, 100_000);
      const started = performance.now();
      const counts = await driver.sweep(batchSize);
      return { ...counts, durationMs: round2(performance.now() - started) };
    },
    close: async () => {
      await Promise.allSettled([...subscriptions].map((unsubscribe) => unsubscribe()));
      await driver.close();
    },
  };
}

/** An absolute deadline: any past moment, or at most ten years ahead (like a TTL). */
function checkDeadline(field: string, value: unknown): number {
  const ms = checkDate(field, value).getTime();
  if (ms > Date.now() + MAX_TTL_SECONDS * 1000) {
    throw new ValidationError(field, `must be at most ${MAX_TTL_SECONDS} seconds ahead`);
  }
  return ms;
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** An ISO-8601 date and time with its offset, as `TokenInfo.expiresAt` is written; answers epoch ms. */
function checkIsoTime(field: string, value: unknown): number {
  if (typeof value !== 'string' || !ISO_TIME.test(value) || Number.isNaN(Date.parse(value))) {
    throw new ValidationError(
      field,
      `expected an ISO-8601 time such as 2030-01-01T00:00:00.000Z, got ${describe(value)}`,
    );
  }
  return Date.parse(value);
}

function checkBatch(field: string, value: unknown): asserts value is unknown[] {
  if (!Array.isArray(value)) throw new ValidationError(field, `expected an array, got ${describe(value)}`);
  if (value.length > MAX_BATCH)
    throw new ValidationError(field, `at most ${MAX_BATCH} items, got ${value.length}`);
}

function checkLease(queue: unknown, id: unknown, receipt: unknown): void {
  checkName('queue', queue);
  checkName('id', id);
  checkName('receipt', receipt);
}

function checkScopes(value: unknown): Scope[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ValidationError('scopes', `expected a non-empty array of scopes, got ${describe(value)}`);
  }
  for (const [i, scope] of value.entries()) {
    if (!(SCOPES as readonly unknown[]).includes(scope)) {
      throw new ValidationError(
        `scopes[${i}]`,
        `unknown scope ${JSON.stringify(scope)} (allowed: ${SCOPES.join(', ')})`,
      );
    }
  }
  return [...new Set(value as Scope[])];
}

/** A page of connection ids as callers see it: a cursor (the last id) when more follow. */
function idsPage(page: { connectionIds: string[]; more: boolean }): ConnectionIdsPage {
  const last = page.connectionIds.at(-1);
  return page.more && last !== undefined
    ? { connectionIds: page.connectionIds, cursor: encodeCursor(last) }
    : { connectionIds: page.connectionIds };
}

const EVENT_ID = new RegExp(EVENT_ID_PATTERN);
function parseEventId(field: string, value: unknown): number {
  if (typeof value !== 'string' || !EVENT_ID.test(value)) {
    throw new ValidationError(field, 'expected an event id (a string of up to 16 digits)');
  }
  return Number(value);
}

/**
 * The bootstrap admin token of the configuration (its SHA-256 only). Its id is derived from the
 * hash, so a rotated bootstrap token (a new hash) is a different token: `get` of the old id
 * answers nothing, and connections opened with the old token are refused once they re-check.
 */
function bootstrapToken(configured: string | undefined): { hash: string; info: TokenInfo } | undefined {
  if (!configured) return undefined;
  const hash = configured.toLowerCase();
  return {
    hash,
    info: {
      id: `bootstrap:${createHash('sha256').update(`bootstrap-id:${hash}`).digest('hex').slice(0, 16)}`,
      identity: 'bootstrap',
      scopes: ['admin'],
      resources: ['*'],
      createdAt: '1970-01-01T00:00:00.000Z',
      expiresAt: null,
      issuerId: null,
    },
  };
}

function issuerGone(issuerId: string): UnauthorizedError {
  return new UnauthorizedError(
    `issuerId: the issuing token ${JSON.stringify(issuerId)} is unknown, expired or revoked`,
  );
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/**
 * Delivers a channel's events to `handler` in id order, each once, with no gap: live events
 * from the driver pass through a cursor; a jump in sequence numbers or a reconnect is filled
 * from history. Handler calls are serialised; a handler that throws does not end the subscription.
 */
async function subscribeInOrder(
  driver: EventDriver,
  channel: string,
  handler: EventHandler,
  after: number | undefined,
): Promise<() => Promise<void>> {
  // The last sequence delivered. Without `after`, everything published from this call on is
  // delivered: the cursor starts at the channel's current end.
  let cursor = after ?? (await driver.last(channel));
  let closed = false;
  let chain: Promise<void> = Promise.resolve();
  const log = (message: string, error: unknown) =>
    console.error(JSON.stringify({ level: 'ERROR', message, channel, error: String(error) }));

  const deliver = async (event: PublishedEvent) => {
    if (closed) return;
    const seq = Number(event.id);
    if (seq <= cursor) return;
    cursor = seq;
    try {
      await handler(event);
    } catch (error) {
      log('event handler failed', error);
    }
  };
  const catchUp = async (upTo: number) => {
    while (!closed && cursor < upTo) {
      const page = await driver.history(channel, cursor, 1000);
      const before = cursor;
      for (const event of page) await deliver(event);
      if (page.length === 0 || cursor === before) break;
    }
  };
  /** Catch-up that a failed history read does not end: retried with back-off until it succeeds or the subscription closes. */
  const catchUpReliably = async (upTo: number) => {
    for (let delayMs = 100; !closed; delayMs = Math.min(delayMs * 2, 5000)) {
      try {
        return await catchUp(upTo);
      } catch (error) {
        // Even a refusal (missing permissions) is retried: an operator may fix it, and the
        // subscription then catches up. Closing the subscription or the storage ends the loop.
        log('subscription catch-up failed; retrying', error);
        await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
      }
    }
  };
  const enqueue = (task: () => Promise<void>) => {
    chain = chain.then(task).catch((error) => log('subscription task failed', error));
  };

  const unsubscribe = await driver.subscribe(
    channel,
    (event) =>
      enqueue(async () => {
        const seq = Number(event.id);
        if (seq > cursor + 1) await catchUpReliably(seq - 1);
        await deliver(event);
      }),
    () => enqueue(() => catchUpReliably(Number.MAX_SAFE_INTEGER)),
  );
  // Events published before the subscription was confirmed (or after `after`) come from history.
  // Live events queue behind this first catch-up; if it fails, subscribe fails.
  const initial = chain.then(() => catchUp(Number.MAX_SAFE_INTEGER));
  chain = initial.catch(() => {});
  try {
    await initial;
  } catch (error) {
    closed = true;
    await unsubscribe().catch(() => {});
    throw error;
  }
  return async () => {
    closed = true;
    await unsubscribe();
  };
}
