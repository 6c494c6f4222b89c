/**
 * The Redis backend (ioredis 5; Redis 6.2+, ElastiCache incl. cluster mode and Serverless,
 * Upstash). Every key starts with `keyPrefix` (so ACL key patterns like `~kubently:*` work),
 * followed by a hash tag per related key set: `{s}` sessions, `{t}` tokens, `{a}` audit,
 * `{q:<name>}` per queue, `{e:<name>}` per channel, `{ws}` the WebSocket connection registry (keys.ts);
 * kv keys are single keys.
 *
 * Trade-off: the sessions, tokens, audit and connection stores each live in one cluster slot so that
 * one script can keep a record and its indexes consistent; queues and channels spread
 * across slots by name.
 */
import { randomUUID } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import type { StorageConfig } from '../../config/index.js';
import { DEFAULT_REPLICA_WAIT_SECONDS } from '../../config/schema.js';
import { ConflictError, NotFoundError } from '../../errors.js';
import { matchesAny } from '../../glob.js';
import type {
  AuditDriver,
  ConnectionDriver,
  Driver,
  EventDriver,
  KvDriver,
  QueueDriver,
  SessionDriver,
  StoredToken,
  TokenDriver,
} from '../driver.js';
import { compareBytes, formatEventId, isoTime as iso } from '../driver.js';
import { covers } from '../lineage.js';
import { readFiltered, tokenPosition } from '../paging.js';
import type { AuditEntry, Connection, PoolUse, PublishedEvent, Session } from '../types.js';
import { parseJson } from '../validate.js';
import {
  createRedisClient,
  duplicateClient,
  type FailureContext,
  mapRedisError,
  type RedisClient,
} from './client.js';
import { redisConsumers } from './consumers.js';
import { durabilityCheck } from './durability.js';
import {
  auditKeys,
  connectionKeys,
  eventKeys,
  kvKey,
  queueKeys,
  SESSION_FIELDS,
  sessionKeys,
  tokenKeys,
} from './keys.js';
import { confirmWrites } from './replicas.js';
import {
  type ScriptArgs,
  type ScriptCaller,
  type SessionFields,
  type StreamEntry,
  scriptCaller,
} from './scripts.js';

export interface RedisDriverOptions {
  /** Use this client for commands instead of opening one; it is not closed by `close()`. */
  client?: RedisClient;
}

/** Batches one sweep removes of the connection registry at most; the next sweep goes on. */
const MAX_SWEEP_BATCHES = 100;

const nullable = (text: string | null | undefined) => (text === '' || text == null ? null : text);

/** Names whose keys `memo` keeps; past that it starts again (a name's keys are cheap to rebuild). */
const MEMO_NAMES = 1000;

/** `build` remembered per name: the hot paths build a queue's or channel's keys once, not per call. */
function memo<T>(build: (name: string) => T): (name: string) => T {
  const built = new Map<string, T>();
  return (name) => {
    let value = built.get(name);
    if (value === undefined) {
      if (built.size >= MEMO_NAMES) built.clear();
      value = build(name);
      built.set(name, value);
    }
    return value;
  };
}

export function createRedisDriver(config: StorageConfig, options: RedisDriverOptions = {}): Driver {
  const client = options.client ?? createRedisClient(config);
  const owned = options.client === undefined;
  // Connection errors surface on the commands that meet them (as BackendUnavailableError);
  // without a listener ioredis would also print each reconnect failure. A command that gives up
  // while the client cannot connect says only that it gave up: the connection's last error says why.
  let connectError: Error | undefined;
  if (owned) {
    client.on('error', (error: Error) => {
      connectError = error;
    });
    client.on('ready', () => {
      connectError = undefined;
    });
  }
  const whyNotConnected = () => (client.status === 'ready' ? undefined : connectError);
  const run = scriptCaller(client);

  const prefix = config.keyPrefix;
  // The command connection and the subscriber count against `redis.maxConnections`.
  const blocking = blockingPool(client, {
    maxIdle: config.redis.poolSize ?? 4,
    maxBusy:
      config.redis.maxConnections === undefined ? Number.POSITIVE_INFINITY : config.redis.maxConnections - 2,
  });
  const subscriber = subscriberHub(client);
  const durability = durabilityCheck(client, config);

  const driver: Driver = {
    name: 'redis',
    kv: redisKv(client, run, prefix, config.redis.cluster),
    sessions: redisSessions(client, run, prefix),
    queues: redisQueues(run, prefix, config, blocking),
    events: redisEvents(client, run, prefix, subscriber),
    tokens: redisTokens(client, run, prefix),
    audit: redisAudit(run, prefix, config),
    connections: redisConnections(run, prefix),
    consumers: redisConsumers(client, run, prefix),
    pools: () => ({ redis: blocking.use() }),
    async ping() {
      await client.ping();
    },
    durabilityWarnings: () => durability.warnings(),
    async sweep(batchSize) {
      const s = sessionKeys(prefix);
      const sessions = await run('sessionSweep', [s.clusters], [s.base, batchSize]);
      const t = tokenKeys(prefix);
      const tokensBefore = Number(await client.hlen(t.ids));
      await run('tokenList', [t.ids], [t.base]);
      const tokens = tokensBefore - Number(await client.hlen(t.ids));
      const a = auditKeys(prefix);
      const audit = await run(
        'auditSweep',
        [a.log, a.identities],
        [a.base, Math.round(config.audit.maxAge * 1000), batchSize],
      );
      const ws = connectionKeys(prefix);
      let connections = 0;
      for (let i = 0; i < MAX_SWEEP_BATCHES; i++) {
        const n = await run('connectionSweep', [ws.conns], [ws.base, batchSize]);
        connections += n;
        if (n < batchSize) break;
      }
      // kv, queue dedup ids and event history expire or trim natively in Redis.
      return { kv: 0, sessions, queues: 0, events: 0, tokens: Math.max(0, tokens), audit, connections };
    },
    async close() {
      await Promise.allSettled([blocking.close(), subscriber.close()]);
      if (owned) {
        // QUIT flushes what is in flight; a client that is not connected has nothing to flush
        // and would only queue QUIT behind its reconnect attempts.
        if (client.status === 'ready') await client.quit().catch(() => {});
        client.disconnect();
      }
    },
  };
  const wait = config.redis.waitForReplicas;
  // The configuration refuses waitForReplicas with a cluster; a client passed in is trusted.
  const confirmed =
    wait && !(client instanceof Cluster)
      ? confirmWrites(driver, client, {
          replicas: wait.replicas,
          timeoutMs: Math.round((wait.timeout ?? DEFAULT_REPLICA_WAIT_SECONDS) * 1000),
        })
      : driver;
  return guard(
    confirmed,
    {
      commandTimeoutSeconds: config.redis.commandTimeout,
      maxRetriesPerRequest: config.redis.maxRetriesPerRequest,
    },
    whyNotConnected,
  );
}

/** Wraps every driver method so connection failures surface as `BackendUnavailableError`. */
function guard(driver: Driver, failure: FailureContext, whyNotConnected: () => Error | undefined): Driver {
  const fail = (error: unknown): Promise<never> =>
    Promise.reject(mapRedisError(error, failure, whyNotConnected()));
  const wrap = <T extends object>(target: T): T => {
    const wrapped = {} as Record<string, unknown>;
    for (const [name, value] of Object.entries(target)) {
      wrapped[name] =
        typeof value === 'function'
          ? (...args: unknown[]) => {
              // No async frame of its own: one await less on every call.
              try {
                return Promise.resolve(value.apply(target, args)).catch(fail);
              } catch (error) {
                return fail(error);
              }
            }
          : value;
    }
    return wrapped as T;
  };
  return {
    ...wrap(driver),
    name: driver.name,
    // Synchronous and touches no connection.
    pools: driver.pools,
    kv: wrap(driver.kv),
    sessions: wrap(driver.sessions),
    queues: wrap(driver.queues),
    events: wrap(driver.events),
    tokens: wrap(driver.tokens),
    audit: wrap(driver.audit),
    connections: wrap(driver.connections),
    consumers: wrap(driver.consumers),
  };
}

// ---------------------------------------------------------------------------------------

function redisKv(client: RedisClient, run: ScriptCaller, prefix: string, cluster: boolean): KvDriver {
  const k = (key: string) => kvKey(prefix, key);
  const decode = (text: string | null) => (text === null ? undefined : parseJson(text));
  return {
    async get(key) {
      return decode(await client.get(k(key)));
    },
    async getEntry(key) {
      const reply = await run('kvGetEntry', [k(key)], []);
      if (reply === null) return undefined;
      const [text, pttl] = reply;
      return { value: parseJson(text), expiresAt: pttl < 0 ? null : iso(Date.now() + pttl) };
    },
    async set(key, json, expiry, condition) {
      const args: (string | number)[] = [k(key), json];
      if (expiry)
        args.push(...('ttlMs' in expiry ? ['PX', expiry.ttlMs] : ['PXAT', Math.max(1, expiry.atMs)]));
      if (condition) args.push(condition.toUpperCase());
      const reply = await (client.call as (...a: (string | number)[]) => Promise<unknown>)('SET', ...args);
      return reply === 'OK';
    },
    async delete(key) {
      return (await client.del(k(key))) === 1;
    },
    async exists(key) {
      return (await client.exists(k(key))) === 1;
    },
    async expire(key, expiry) {
      const args: ['' | 'ttl' | 'at', number] =
        expiry === null
          ? ['', 0]
          : 'ttlMs' in expiry
            ? ['ttl', expiry.ttlMs]
            : ['at', Math.max(1, expiry.atMs)];
      return run('kvExpire', [k(key)], args);
    },
    async ttlMs(key) {
      const pttl = await client.pttl(k(key));
      return pttl === -2 ? undefined : pttl === -1 ? null : pttl;
    },
    async incr(key, by) {
      try {
        return await run('kvIncr', [k(key)], [by]);
      } catch (error) {
        if (error instanceof Error && error.message.includes('KST_CONFLICT')) {
          throw new ConflictError(
            `value of ${JSON.stringify(key)} is not an integer, or the result would overflow`,
          );
        }
        throw error;
      }
    },
    async getMany(keys) {
      if (!cluster) return (await client.mget(keys.map(k))).map(decode);
      // MGET across slots is refused by a cluster; single GETs in flight together cost one round trip.
      return Promise.all(keys.map(async (key) => decode(await client.get(k(key)))));
    },
    async setMany(entries) {
      const write = (p: ReturnType<Redis['multi']>) => {
        for (const { key, json, ttlMs } of entries) {
          if (ttlMs === undefined) p.set(k(key), json);
          else p.set(k(key), json, 'PX', ttlMs);
        }
        return p;
      };
      if (!cluster) {
        const results = await write((client as Redis).multi()).exec();
        const failed = results?.find(([error]) => error);
        if (!results || failed) throw failed?.[0] ?? new Error('Connection is closed.');
        return;
      }
      // A cluster cannot run MULTI across slots: each write is atomic on its own.
      await Promise.all(
        entries.map(({ key, json, ttlMs }) =>
          ttlMs === undefined ? client.set(k(key), json) : client.set(k(key), json, 'PX', ttlMs),
        ),
      );
    },
  };
}

// ---------------------------------------------------------------------------------------

function redisSessions(client: RedisClient, run: ScriptCaller, prefix: string): SessionDriver {
  const keys = sessionKeys(prefix);
  const { base, clusters } = keys;
  /** Fields in the order of the scripts' FIELDS table. */
  const fromFields = (id: string, f: SessionFields): Session => {
    const [cluster, user, corr, svc, data, created, last, exp] = f as string[];
    return {
      sessionId: id,
      clusterId: cluster as string,
      userId: nullable(user),
      correlationId: nullable(corr),
      serviceIdentity: nullable(svc),
      data: parseJson(data as string) as Session['data'],
      createdAt: iso(created as string),
      lastActivity: iso(last as string),
      expiresAt: iso(exp as string),
    };
  };
  const list = async (index: string) => {
    const sessions = (await run('sessionList', [index], [base])).map(({ id, fields }) =>
      fromFields(id, fields),
    );
    return sessions.sort(
      (a, b) => a.createdAt.localeCompare(b.createdAt) || a.sessionId.localeCompare(b.sessionId),
    );
  };
  return {
    async create(s) {
      const t = s.times;
      const [created, exp, last] = await run(
        'sessionCreate',
        [clusters],
        [
          base,
          s.sessionId,
          s.clusterId,
          s.userId ?? '',
          s.correlationId ?? '',
          s.serviceIdentity ?? '',
          s.dataJson,
          s.ttlMs,
          t?.createdAtMs ?? '',
          t?.lastActivityMs ?? '',
          t?.expiresAtMs ?? '',
        ],
      );
      return {
        sessionId: s.sessionId,
        clusterId: s.clusterId,
        userId: s.userId,
        correlationId: s.correlationId,
        serviceIdentity: s.serviceIdentity,
        data: parseJson(s.dataJson) as Session['data'],
        createdAt: iso(created),
        lastActivity: iso(last),
        expiresAt: iso(exp),
      };
    },
    async get(id) {
      // The session hash expires with the session, so one HMGET answers exactly.
      const f = await client.hmget(keys.session(id), ...SESSION_FIELDS);
      return f[0] === null ? undefined : fromFields(id, f);
    },
    async keepAlive(id, ttlMs, times) {
      const f = await run(
        'sessionKeepAlive',
        [clusters],
        [base, id, ttlMs ?? '', times?.lastActivityMs ?? '', times?.expiresAtMs ?? ''],
      );
      return f === null ? undefined : fromFields(id, f);
    },
    async end(id) {
      return run('sessionEnd', [clusters], [base, id]);
    },
    byCluster: (clusterId) => list(keys.cluster(clusterId)),
    byCorrelation: (correlationId) => list(keys.correlation(correlationId)),
    activeClusterPage: (after, limit, within) =>
      readFiltered(
        (from, count) => run('sessionClusterPage', [clusters, keys.names], [from ?? '', count]),
        after,
        limit,
        within === undefined ? undefined : (clusterId) => matchesAny(within, clusterId),
        (clusterId) => clusterId,
      ),
    async isClusterActive(clusterId) {
      // The cluster's index expires with its latest session (index_add), so Redis's clock
      // answers with one plain command, exactly as `get` of that session would.
      return (await client.exists(keys.cluster(clusterId))) === 1;
    },
  };
}

// ---------------------------------------------------------------------------------------

/** How long a long poll pauses between looks when no blocking connection may be opened. */
const POLL_PAUSE_MS = 100;
/** A blocking connection's command timeout: above any wait a long poll asks of one BLPOP. */
export const BLOCKING_COMMAND_TIMEOUT_MS = 30_000;

interface BlockingPool {
  /** Waits up to `ms` for a wake-up token on `key`. */
  wait(key: string, ms: number): Promise<void>;
  /** True once `close()` ran: long polls end with what they have. */
  readonly closed: boolean;
  /** Blocked, idle and polling waits now. */
  use(): PoolUse;
  close(): Promise<void>;
}

/**
 * Connections for long polls: a blocking BLPOP holds its connection, so waits never run on the
 * command connection. Up to `maxIdle` idle connections are kept for reuse (`redis.poolSize`),
 * extra ones are closed. With `maxBusy` connections blocked (`redis.maxConnections` less the
 * command and subscriber connections), a further wait sleeps briefly instead of opening one:
 * its long poll then polls, which costs a script call per pause but never a connection.
 */
function blockingPool(client: RedisClient, limits: { maxIdle: number; maxBusy: number }): BlockingPool {
  const idle: RedisClient[] = [];
  const busy = new Set<RedisClient>();
  const { maxIdle: MAX_IDLE, maxBusy } = limits;
  let closed = false;
  /** Waits pausing because `maxBusy` connections are blocked. */
  let polling = 0;
  const open = (): RedisClient => {
    // A BLPOP resent after a reconnect would start its full timeout again: it is not resent, and
    // the long poll runs its loop again with the time it has left. ioredis drops such a command
    // without settling it, so its own blocking timeout (its BLPOP timeout plus a grace) ends it
    // on the client too, as it does when a frozen server never answers; `wait` also ends it as
    // soon as the connection is ready again.
    const connection = duplicateClient(client, {
      commandTimeout: BLOCKING_COMMAND_TIMEOUT_MS,
      blockingTimeout: BLOCKING_COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 1,
      autoResendUnfulfilledCommands: false,
    });
    connection.on('error', () => {});
    return connection;
  };
  return {
    async wait(key, ms) {
      if (closed || ms <= 0) return;
      if (idle.length === 0 && busy.size >= maxBusy) {
        polling++;
        try {
          await new Promise((resolve) => setTimeout(resolve, Math.min(ms, POLL_PAUSE_MS)));
        } finally {
          polling--;
        }
        return;
      }
      const connection = idle.pop() ?? open();
      busy.add(connection);
      // Ready again after a drop: the BLPOP in flight was not resent, so nothing will answer it.
      // The wait ends then, like a wake-up, instead of at its timeout (the connection is not
      // reused: it may still hold that BLPOP).
      let dropped = false;
      const onReady = () => {
        dropped = true;
        reconnected();
      };
      const onClose = () => connection.once('ready', onReady);
      let reconnected: () => void = () => {};
      const back = new Promise<void>((resolve) => {
        reconnected = resolve;
      });
      connection.once('close', onClose);
      try {
        // BLPOP takes seconds with decimals; 0 would block forever.
        const popped = connection.blpop(key, Math.max(0.01, ms / 1000));
        popped.catch(() => {}); // settled after the race when the connection came back
        await Promise.race([popped, back]);
      } catch {
        // A dropped connection (or close()) ends the wait like a wake-up. A short pause keeps a
        // connection that cannot come back from turning the long poll into a busy loop; if Redis
        // is down, the poll's next script call reports it.
        if (!closed) await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        connection.off('close', onClose);
        connection.off('ready', onReady);
        busy.delete(connection);
        if (!closed && !dropped && idle.length < MAX_IDLE && connection.status === 'ready')
          idle.push(connection);
        else connection.disconnect();
      }
    },
    get closed() {
      return closed;
    },
    use: () => ({
      inUse: busy.size,
      idle: idle.length,
      waiting: polling,
      max: Number.isFinite(maxBusy) ? Math.max(0, maxBusy) : null,
    }),
    async close() {
      closed = true;
      for (const connection of [...idle, ...busy]) connection.disconnect();
      idle.length = 0;
    },
  };
}

function redisQueues(
  run: ScriptCaller,
  prefix: string,
  config: StorageConfig,
  blocking: BlockingPool,
): QueueDriver {
  const maxAttempts = config.queues.maxAttempts;
  const dedupWindowMs = Math.round(config.queues.dedupWindow * 1000);
  const keysOf = memo((queue: string) => {
    const q = queueKeys(prefix, queue);
    return { notify: q.notify, keys: [q.base] as [string] };
  });
  const leaseResult = (outcome: 'ok' | 'stale' | 'missing', id: string) => {
    if (outcome === 'missing') throw new NotFoundError(`message ${id} not found`);
    if (outcome === 'stale') throw new ConflictError(`receipt for message ${id} is stale: the lease ended`);
  };
  return {
    async send(queue, json, delayMs, dedupId) {
      const { keys } = keysOf(queue);
      return run('queueSend', keys, [randomUUID(), json, delayMs, dedupId ?? '', dedupWindowMs]);
    },
    async receive(queue, max, visibilityMs, waitMs) {
      const { keys, notify } = keysOf(queue);
      const deadline = Date.now() + waitMs;
      /** Counted as waiting by the last script call (sends wake only counted long polls). */
      let waited = false;
      for (;;) {
        // randomUUID draws from a cached pool: no system call per receive, as randomBytes makes.
        const receiptPrefix = `${randomUUID()}.`;
        const left = blocking.closed ? 0 : deadline - Date.now();
        const { messages, dueInMs: dueIn } = await run('queueReceive', keys, [
          max,
          visibilityMs,
          maxAttempts,
          receiptPrefix,
          waited ? '1' : '',
          Math.max(0, left),
        ]);
        waited = left > 0;
        if (messages.length > 0) return messages;
        const now = Date.now();
        if (now >= deadline || blocking.closed) {
          // Something becomes visible after this poll gives up. A wake-up this poll consumed
          // (for a delayed send, say) would go with it: hand one on to the next long poll. And
          // a poll counted as waiting stops being counted.
          if ((dueIn >= 0 || waited) && !blocking.closed) {
            await run('queueWake', keys, [waited ? '1' : '', dueIn >= 0 ? '1' : '']);
          }
          return [];
        }
        // Wake on a send, or when a delay passes or a lease ends.
        const until = dueIn >= 0 ? Math.min(deadline, now + Math.max(5, dueIn)) : deadline;
        await blocking.wait(notify, until - now);
        if (blocking.closed) return [];
      }
    },
    async ack(queue, id, receipt) {
      const { keys } = keysOf(queue);
      leaseResult(await run('queueAck', keys, [id, receipt]), id);
    },
    async nack(queue, id, receipt, delayMs) {
      const { keys } = keysOf(queue);
      leaseResult(await run('queueNack', keys, [id, receipt, delayMs, maxAttempts]), id);
    },
    async extend(queue, id, receipt, visibilityMs) {
      const { keys } = keysOf(queue);
      leaseResult(await run('queueExtend', keys, [id, receipt, visibilityMs]), id);
    },
    async stats(queue) {
      const { keys } = keysOf(queue);
      return run('queueStats', keys, [maxAttempts]);
    },
    async deadLetters(queue, limit) {
      const { keys } = keysOf(queue);
      return run('queueDeadLetters', keys, [maxAttempts, limit]);
    },
    async redrive(queue, limit) {
      const { keys } = keysOf(queue);
      return run('queueRedrive', keys, [maxAttempts, limit]);
    },
  };
}

// ---------------------------------------------------------------------------------------

interface SubscriberHub {
  subscribe(
    channel: string,
    onMessage: (text: string) => void,
    onReconnect: () => void,
  ): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * One dedicated subscriber connection per storage, shared by all its subscriptions. It
 * inherits the command connection's retry bound, so a subscribe to an unreachable server
 * fails with the same typed error as any command instead of waiting forever.
 */
function subscriberHub(client: RedisClient): SubscriberHub {
  interface Listener {
    onMessage: (text: string) => void;
    onReconnect: () => void;
  }
  let connection: RedisClient | undefined;
  /** Channel → its listeners and the promise of its SUBSCRIBE being confirmed. */
  const channels = new Map<string, { listeners: Set<Listener>; ready: Promise<unknown> }>();
  let connectedOnce = false;

  const connect = (): RedisClient => {
    if (connection) return connection;
    const c = duplicateClient(client, {});
    c.on('message', (channel: string, text: string) => {
      for (const listener of channels.get(channel)?.listeners ?? []) listener.onMessage(text);
    });
    c.on('ready', () => {
      if (!connectedOnce) {
        connectedOnce = true;
        return;
      }
      // Back after a drop. Catch-up from history must start only once live delivery is back,
      // or an event published in between would wait for the next one to be noticed: subscribe
      // again (ioredis does too; a repeat is harmless) and wait for the server's confirmation.
      const names = [...channels.keys()];
      if (names.length === 0) return;
      c.subscribe(...names).then(
        () => {
          for (const name of names) for (const l of channels.get(name)?.listeners ?? []) l.onReconnect();
        },
        () => {}, // dropped again: the next 'ready' retries
      );
    });
    c.on('error', () => {}); // reconnects by itself; subscribers catch up from history
    connection = c;
    return c;
  };

  return {
    async subscribe(channel, onMessage, onReconnect) {
      const c = connect();
      const listener: Listener = { onMessage, onReconnect };
      let entry = channels.get(channel);
      if (entry) entry.listeners.add(listener);
      else {
        const created = { listeners: new Set([listener]), ready: c.subscribe(channel) };
        channels.set(channel, created);
        // A refused SUBSCRIBE must not leave a channel entry that later subscribers would trust.
        created.ready.catch(() => {
          if (channels.get(channel) === created) channels.delete(channel);
        });
        entry = created;
      }
      try {
        await entry.ready; // a second subscriber of a channel waits for the first SUBSCRIBE too
      } catch (error) {
        entry.listeners.delete(listener);
        throw error;
      }
      return async () => {
        const current = channels.get(channel);
        if (!current?.listeners.delete(listener)) return;
        if (current.listeners.size === 0) {
          channels.delete(channel);
          await c.unsubscribe(channel).catch(() => {});
        }
      };
    },
    async close() {
      channels.clear();
      connection?.disconnect();
      connection = undefined;
    },
  };
}

function redisEvents(
  client: RedisClient,
  run: ScriptCaller,
  prefix: string,
  hub: SubscriberHub,
): EventDriver {
  const keysOf = memo((channel: string) => eventKeys(prefix, channel));
  return {
    async publish(channel, json, maxHistory) {
      const { stream, counter, live } = keysOf(channel);
      const { seq, publishedMs } = await run('eventPublish', [stream, counter], [json, maxHistory, live]);
      return { id: formatEventId(seq), publishedAt: iso(publishedMs) };
    },
    async last(channel) {
      return Number((await client.get(keysOf(channel).counter)) ?? 0);
    },
    async history(channel, after, limit) {
      const { stream } = keysOf(channel);
      const start = after > 0 ? `(${after}-1` : '-';
      const entries = (await client.xrange(stream, start, '+', 'COUNT', limit)) as [string, string[]][];
      return entries.map(([id, fields]): PublishedEvent => {
        const f = pairs(fields);
        return {
          id: formatEventId(Number(id.slice(0, id.indexOf('-')))),
          channel,
          message: parseJson(f.m as string),
          publishedAt: iso(f.t as string),
        };
      });
    },
    async subscribe(channel, onEvent, onReconnect) {
      const { live } = keysOf(channel);
      return hub.subscribe(
        live,
        (text) => {
          const a = text.indexOf(':');
          const b = text.indexOf(':', a + 1);
          void onEvent({
            id: formatEventId(Number(text.slice(0, a))),
            channel,
            message: parseJson(text.slice(b + 1)),
            publishedAt: iso(text.slice(a + 1, b)),
          });
        },
        onReconnect,
      );
    },
  };
}

function pairs(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
  return out;
}

// ---------------------------------------------------------------------------------------

function redisTokens(client: RedisClient, run: ScriptCaller, prefix: string): TokenDriver {
  const keys = tokenKeys(prefix);
  const { base, ids } = keys;
  return {
    async insert(token) {
      const expiresAt = token.expiresAt === null ? '' : Date.parse(token.expiresAt);
      const args: ScriptArgs<'tokenInsert'> = [
        base,
        token.id,
        token.hash,
        JSON.stringify(token),
        expiresAt,
        token.issuerId ?? '',
        tokenPosition(token),
      ];
      return run('tokenInsert', [ids], args);
    },
    async findByHash(hash) {
      const text = await client.get(keys.byHash(hash));
      return text === null ? undefined : storedToken(text);
    },
    async findById(id) {
      const text = await run('tokenGet', [ids], [base, id]);
      if (text === null) return undefined;
      const { hash: _hash, ...info } = storedToken(text);
      return info;
    },
    async revoke(id) {
      return run('tokenRevoke', [ids], [base, id]);
    },
    page: (after, limit, within) =>
      readFiltered(
        async (from, count) => {
          const page = await run('tokenPage', [ids, keys.order], [base, from ?? '', count]);
          const items = page.items.map((text) => {
            const { hash: _hash, ...info } = storedToken(text);
            return info;
          });
          return { ...page, items };
        },
        after,
        limit,
        within === undefined ? undefined : (token) => covers(within, token.resources),
        tokenPosition,
      ),
  };
}

/** A stored record; records written before lineage existed have no `issuerId`. */
function storedToken(text: string): StoredToken {
  const record = JSON.parse(text) as StoredToken;
  return { ...record, issuerId: record.issuerId ?? null };
}

// ---------------------------------------------------------------------------------------

function redisAudit(run: ScriptCaller, prefix: string, config: StorageConfig): AuditDriver {
  const { base, log, identities } = auditKeys(prefix);
  const maxAgeMs = Math.round(config.audit.maxAge * 1000);
  const toEntry = ([id, fields]: StreamEntry): AuditEntry => {
    const f = pairs(fields);
    return {
      id,
      at: iso(id.slice(0, id.indexOf('-'))),
      identity: f.i as string,
      action: f.a as string,
      resource: nullable(f.r),
      correlationId: nullable(f.c),
      outcome: f.o as AuditEntry['outcome'],
      details: f.d ? (parseJson(f.d) as AuditEntry['details']) : null,
    };
  };
  return {
    async append(e) {
      const id = await run(
        'auditAppend',
        [log, identities],
        [
          base,
          config.audit.maxEntries,
          maxAgeMs,
          e.identity,
          e.action,
          e.resource ?? '',
          e.correlationId ?? '',
          e.outcome,
          e.detailsJson ?? '',
        ],
      );
      return {
        id,
        at: iso(id.slice(0, id.indexOf('-'))),
        identity: e.identity,
        action: e.action,
        resource: e.resource,
        correlationId: e.correlationId,
        outcome: e.outcome,
        details: e.detailsJson === null ? null : (parseJson(e.detailsJson) as AuditEntry['details']),
      };
    },
    async query(q) {
      // Stream ids start at 0-1: nothing is before the epoch.
      if (q.untilMs !== undefined && q.untilMs <= 0) return [];
      const entries = await run(
        'auditQuery',
        [log],
        [base, q.identity ?? '', q.sinceMs ?? '', q.untilMs ?? '', q.limit, q.order, maxAgeMs],
      );
      return entries.map(toEntry);
    },
  };
}

// ---------------------------------------------------------------------------------------

/** The connection registry: every key under one hash tag, `{ws}` (see keys.ts for the layout). */
function redisConnections(run: ScriptCaller, prefix: string): ConnectionDriver {
  const { base, conns } = connectionKeys(prefix);
  return {
    async register(c, maxPerToken) {
      const reply = await run(
        'connectionRegister',
        [conns],
        [
          base,
          c.connectionId,
          c.identity,
          JSON.stringify(c.scopes),
          JSON.stringify(c.resources),
          c.ttlMs,
          c.tokenId,
          c.tokenExpiresAtMs ?? '',
          maxPerToken ?? '',
        ],
      );
      if (reply === 'full') return 'full';
      const { connectedMs: connected, expMs: exp } = reply;
      return {
        connectionId: c.connectionId,
        identity: c.identity,
        scopes: [...c.scopes],
        resources: [...c.resources],
        tokenId: c.tokenId,
        tokenExpiresAt: c.tokenExpiresAtMs === null ? null : iso(c.tokenExpiresAtMs),
        connectedAt: iso(connected),
        expiresAt: iso(exp),
        channels: [],
      };
    },
    async get(id) {
      const reply = await run('connectionGet', [conns], [base, id]);
      if (reply === null) return undefined;
      const { identity, scopes, resources, connected, exp, tokenId, tokenExp, channels } = reply;
      return {
        connectionId: id,
        identity,
        scopes: JSON.parse(scopes) as Connection['scopes'],
        resources: JSON.parse(resources) as string[],
        tokenId,
        tokenExpiresAt: tokenExp === '' ? null : iso(tokenExp),
        connectedAt: iso(connected),
        expiresAt: iso(exp),
        channels: channels.sort(compareBytes),
      };
    },
    async subscribe(id, channel, maxChannels) {
      return run('connectionSubscribe', [conns], [base, id, channel, maxChannels]);
    },
    async unsubscribe(id, channel) {
      return run('connectionUnsubscribe', [conns], [base, id, channel]);
    },
    async subscribers(channel, after, limit) {
      const ids = await run('connectionSubscribers', [conns], [base, channel, after ?? '', limit]);
      return { connectionIds: ids.slice(0, limit), more: ids.length > limit };
    },
    async remove(id) {
      return run('connectionRemove', [conns], [base, id]);
    },
    async byToken(tokenId, after, limit) {
      const ids = await run('connectionsOfToken', [conns], [base, tokenId, after ?? '', limit]);
      return { connectionIds: ids.slice(0, limit), more: ids.length > limit };
    },
    async withExpiredToken(limit) {
      return run('connectionsWithExpiredToken', [conns], [base, limit]);
    },
  };
}
