/**
 * The Redis backend (ioredis 5; Redis 6.2+, ElastiCache incl. cluster mode and Serverless,
 * Upstash). Every key starts with `keyPrefix` (so ACL key patterns like `~kubently:*` work),
 * followed by a hash tag per related key set: `{s}` sessions, `{t}` tokens, `{a}` audit,
 * `{q:<name>}` per queue, `{e:<name>}` per channel, `{ws}` the WebSocket connection registry;
 * kv keys are single keys.
 *
 * Trade-off: the sessions, tokens, audit and connection stores each live in one cluster slot so that
 * one script can keep a record and its indexes consistent; queues and channels spread
 * across slots by name.
 */
import { randomBytes, randomUUID } from 'node:crypto';
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
import type { AuditEntry, Connection, PoolUse, PublishedEvent, ReceivedMessage, Session } from '../types.js';
import { parseJson } from '../validate.js';
import {
  createRedisClient,
  duplicateClient,
  type FailureContext,
  mapRedisError,
  type RedisClient,
} from './client.js';
import { durabilityCheck } from './durability.js';
import { confirmWrites } from './replicas.js';
import { type ScriptName, SESSION_FIELDS, scripts } from './scripts.js';

export interface RedisDriverOptions {
  /** Use this client for commands instead of opening one; it is not closed by `close()`. */
  client?: RedisClient;
}

type Reply = string | number | null | Reply[];
type ScriptCaller = (name: ScriptName, keys: string[], args: (string | number)[]) => Promise<Reply>;

/** Batches one sweep removes of the connection registry at most; the next sweep goes on. */
const MAX_SWEEP_BATCHES = 100;

const nullable = (text: string | null | undefined) => (text === '' || text == null ? null : text);

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
  for (const [name, script] of Object.entries(scripts)) {
    client.defineCommand(`kst_${name}`, { numberOfKeys: script.numberOfKeys, lua: script.lua });
  }
  const run: ScriptCaller = (name, keys, args) =>
    (client as unknown as Record<string, (...a: (string | number)[]) => Promise<Reply>>)[`kst_${name}`]!(
      ...keys,
      ...args,
    );

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
    sessions: redisSessions(client, run, `${prefix}{s}:`),
    queues: redisQueues(run, prefix, config, blocking),
    events: redisEvents(client, run, prefix, subscriber),
    tokens: redisTokens(client, run, `${prefix}{t}:`),
    audit: redisAudit(run, `${prefix}{a}:`, config),
    connections: redisConnections(run, `${prefix}{ws}:`),
    pools: () => ({ redis: blocking.use() }),
    async ping() {
      await client.ping();
    },
    durabilityWarnings: () => durability.warnings(),
    async sweep(batchSize) {
      const sessions = Number(
        await run('sessionSweep', [`${prefix}{s}:clusters`], [`${prefix}{s}:`, batchSize]),
      );
      const tokensBefore = Number(await client.hlen(`${prefix}{t}:ids`));
      await run('tokenList', [`${prefix}{t}:ids`], [`${prefix}{t}:`]);
      const tokens = tokensBefore - Number(await client.hlen(`${prefix}{t}:ids`));
      const audit = Number(
        await run(
          'auditSweep',
          [`${prefix}{a}:log`, `${prefix}{a}:identities`],
          [`${prefix}{a}:`, Math.round(config.audit.maxAge * 1000), batchSize],
        ),
      );
      let connections = 0;
      for (let i = 0; i < MAX_SWEEP_BATCHES; i++) {
        const n = Number(
          await run('connectionSweep', [`${prefix}{ws}:conns`], [`${prefix}{ws}:`, batchSize]),
        );
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
  const wrap = <T extends object>(target: T): T => {
    const wrapped = {} as Record<string, unknown>;
    for (const [name, value] of Object.entries(target)) {
      wrapped[name] =
        typeof value === 'function'
          ? async (...args: unknown[]) => {
              try {
                return await value.apply(target, args);
              } catch (error) {
                throw mapRedisError(error, failure, whyNotConnected());
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
  };
}

// ---------------------------------------------------------------------------------------

function redisKv(client: RedisClient, run: ScriptCaller, prefix: string, cluster: boolean): KvDriver {
  const k = (key: string) => `${prefix}kv:${key}`;
  const decode = (text: string | null) => (text === null ? undefined : parseJson(text));
  return {
    async get(key) {
      return decode(await client.get(k(key)));
    },
    async getEntry(key) {
      const reply = (await run('kvGetEntry', [k(key)], [])) as [string, number] | null;
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
      const args =
        expiry === null
          ? ['', 0]
          : 'ttlMs' in expiry
            ? ['ttl', expiry.ttlMs]
            : ['at', Math.max(1, expiry.atMs)];
      return (await run('kvExpire', [k(key)], args)) === 1;
    },
    async ttlMs(key) {
      const pttl = await client.pttl(k(key));
      return pttl === -2 ? undefined : pttl === -1 ? null : pttl;
    },
    async incr(key, by) {
      try {
        return Number(await run('kvIncr', [k(key)], [by]));
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

function redisSessions(client: RedisClient, run: ScriptCaller, base: string): SessionDriver {
  const clusters = `${base}clusters`;
  /** Fields in the order of the scripts' FIELDS table. */
  const fromFields = (id: string, f: Reply[]): Session => {
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
    const flat = (await run('sessionList', [index], [base])) as Reply[];
    const sessions: Session[] = [];
    for (let i = 0; i < flat.length; i += 10)
      sessions.push(fromFields(flat[i] as string, flat.slice(i + 1, i + 10)));
    return sessions.sort(
      (a, b) => a.createdAt.localeCompare(b.createdAt) || a.sessionId.localeCompare(b.sessionId),
    );
  };
  return {
    async create(s) {
      const t = s.times;
      const [created, exp, last] = (await run(
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
      )) as [number, number, number];
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
      const f = await client.hmget(`${base}sess:${id}`, ...SESSION_FIELDS);
      return f[0] === null ? undefined : fromFields(id, f);
    },
    async keepAlive(id, ttlMs, times) {
      const f = (await run(
        'sessionKeepAlive',
        [clusters],
        [base, id, ttlMs ?? '', times?.lastActivityMs ?? '', times?.expiresAtMs ?? ''],
      )) as Reply[] | null;
      return f === null ? undefined : fromFields(id, f);
    },
    async end(id) {
      return (await run('sessionEnd', [clusters], [base, id])) === 1;
    },
    byCluster: (clusterId) => list(`${base}cluster:${clusterId}`),
    byCorrelation: (correlationId) => list(`${base}corr:${correlationId}`),
    activeClusterPage: (after, limit, within) =>
      readFiltered(
        async (from, count) => {
          const reply = (await run(
            'sessionClusterPage',
            [clusters, `${base}names`],
            [from ?? '', count],
          )) as [number, string, ...string[]];
          const [more, last, ...ids] = reply;
          return { items: ids, last: last || undefined, more: more === 1 };
        },
        after,
        limit,
        within === undefined ? undefined : (clusterId) => matchesAny(within, clusterId),
        (clusterId) => clusterId,
      ),
    async isClusterActive(clusterId) {
      return (await run('sessionIsClusterActive', [clusters], [clusterId])) === 1;
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
  const keysOf = (queue: string) => {
    const base = `${prefix}{q:${tagSafe(queue)}}:`;
    return {
      base,
      keys: [`${base}ready`, `${base}delayed`, `${base}inflight`, `${base}dead`, `${base}notify`],
    };
  };
  const leaseResult = (reply: Reply, id: string) => {
    if (reply === -1) throw new NotFoundError(`message ${id} not found`);
    if (reply === 0) throw new ConflictError(`receipt for message ${id} is stale: the lease ended`);
  };
  return {
    async send(queue, json, delayMs, dedupId) {
      const { base, keys } = keysOf(queue);
      const [id, duplicate] = (await run('queueSend', keys, [
        base,
        randomUUID(),
        json,
        delayMs,
        dedupId ?? '',
        dedupWindowMs,
      ])) as [string, number];
      return { id, duplicate: duplicate === 1 };
    },
    async receive(queue, max, visibilityMs, waitMs) {
      const { base, keys } = keysOf(queue);
      const deadline = Date.now() + waitMs;
      for (;;) {
        const receiptPrefix = `${randomBytes(12).toString('base64url')}.`;
        const reply = (await run('queueReceive', keys, [
          base,
          max,
          visibilityMs,
          maxAttempts,
          receiptPrefix,
        ])) as Reply[];
        const count = Number(reply[0]);
        if (count > 0) {
          const messages: ReceivedMessage[] = [];
          for (let i = 2; i < 2 + count * 5; i += 5) {
            messages.push({
              id: reply[i] as string,
              receipt: reply[i + 1] as string,
              payload: parseJson(reply[i + 2] as string),
              attempts: Number(reply[i + 3]),
              enqueuedAt: iso(reply[i + 4] as string),
            });
          }
          return messages;
        }
        const now = Date.now();
        const dueIn = Number(reply[1]); // ms until a delay passes or a lease ends, by Redis's clock
        if (now >= deadline || blocking.closed) {
          // Something becomes visible after this poll gives up. A wake-up this poll consumed
          // (for a delayed send, say) would go with it: hand one on to the next long poll.
          if (dueIn >= 0 && !blocking.closed) await run('queueWake', keys, []);
          return [];
        }
        // Wake on a send, or when a delay passes or a lease ends.
        const until = dueIn >= 0 ? Math.min(deadline, now + Math.max(5, dueIn)) : deadline;
        await blocking.wait(`${base}notify`, until - now);
        if (blocking.closed) return [];
      }
    },
    async ack(queue, id, receipt) {
      const { base, keys } = keysOf(queue);
      leaseResult(await run('queueAck', keys, [base, id, receipt]), id);
    },
    async nack(queue, id, receipt, delayMs) {
      const { base, keys } = keysOf(queue);
      leaseResult(await run('queueNack', keys, [base, id, receipt, delayMs, maxAttempts]), id);
    },
    async extend(queue, id, receipt, visibilityMs) {
      const { base, keys } = keysOf(queue);
      leaseResult(await run('queueExtend', keys, [base, id, receipt, visibilityMs]), id);
    },
    async stats(queue) {
      const { base, keys } = keysOf(queue);
      const [depth, delayed, inFlight, dead] = (await run('queueStats', keys, [
        base,
        maxAttempts,
      ])) as number[];
      return {
        depth: Number(depth),
        delayed: Number(delayed),
        inFlight: Number(inFlight),
        dead: Number(dead),
      };
    },
    async deadLetters(queue, limit) {
      const { base, keys } = keysOf(queue);
      const flat = (await run('queueDeadLetters', keys, [base, maxAttempts, limit])) as string[];
      const out = [];
      for (let i = 0; i < flat.length; i += 5) {
        out.push({
          id: flat[i] as string,
          payload: parseJson(flat[i + 1] as string),
          attempts: Number(flat[i + 2]),
          enqueuedAt: iso(flat[i + 3] as string),
          diedAt: iso(flat[i + 4] as string),
        });
      }
      return out;
    },
    async redrive(queue, limit) {
      const { base, keys } = keysOf(queue);
      return Number(await run('queueRedrive', keys, [base, maxAttempts, limit]));
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
  const keysOf = (channel: string) => {
    const base = `${prefix}{e:${tagSafe(channel)}}:`;
    return { stream: `${base}s`, counter: `${base}n`, live: `${base}live` };
  };
  return {
    async publish(channel, json, maxHistory) {
      const { stream, counter, live } = keysOf(channel);
      const [seq, ms] = (await run('eventPublish', [stream, counter], [json, maxHistory, live])) as [
        number,
        number,
      ];
      return { id: formatEventId(Number(seq)), publishedAt: iso(ms) };
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

/**
 * A name inside a hash tag: `{`, `}` and `%` percent-encoded, so the tag ends where the key
 * layout says and two names never share a key (`a}:dd:z` is not queue `a`).
 */
function tagSafe(name: string): string {
  return /[{}%]/.test(name)
    ? name.replace(/[{}%]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    : name;
}

function pairs(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
  return out;
}

// ---------------------------------------------------------------------------------------

function redisTokens(client: RedisClient, run: ScriptCaller, base: string): TokenDriver {
  const ids = `${base}ids`;
  return {
    async insert(token) {
      const expiresAt = token.expiresAt === null ? '' : Date.parse(token.expiresAt);
      const args = [
        base,
        token.id,
        token.hash,
        JSON.stringify(token),
        expiresAt,
        token.issuerId ?? '',
        tokenPosition(token),
      ];
      return (await run('tokenInsert', [ids], args)) === 1;
    },
    async findByHash(hash) {
      const text = await client.get(`${base}h:${hash}`);
      return text === null ? undefined : storedToken(text);
    },
    async findById(id) {
      const text = (await run('tokenGet', [ids], [base, id])) as string | null;
      if (text === null) return undefined;
      const { hash: _hash, ...info } = storedToken(text);
      return info;
    },
    async revoke(id) {
      return (await run('tokenRevoke', [ids], [base, id])) as string[];
    },
    page: (after, limit, within) =>
      readFiltered(
        async (from, count) => {
          const reply = (await run('tokenPage', [ids, `${base}order`], [base, from ?? '', count])) as [
            number,
            string,
            ...string[],
          ];
          const [more, last, ...records] = reply;
          const items = records.map((text) => {
            const { hash: _hash, ...info } = storedToken(text);
            return info;
          });
          return { items, last: last || undefined, more: more === 1 };
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

function redisAudit(run: ScriptCaller, base: string, config: StorageConfig): AuditDriver {
  const log = `${base}log`;
  const maxAgeMs = Math.round(config.audit.maxAge * 1000);
  const toEntry = ([id, fields]: [string, string[]]): AuditEntry => {
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
      const id = (await run(
        'auditAppend',
        [log, `${base}identities`],
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
      )) as string;
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
      const entries = (await run(
        'auditQuery',
        [log],
        [base, q.identity ?? '', q.sinceMs ?? '', q.untilMs ?? '', q.limit, q.order, maxAgeMs],
      )) as [string, string[]][];
      return entries.map(toEntry);
    },
  };
}

// ---------------------------------------------------------------------------------------

/** The connection registry: every key under one hash tag, `{ws}` (see scripts.ts for the layout). */
function redisConnections(run: ScriptCaller, base: string): ConnectionDriver {
  const conns = `${base}conns`;
  return {
    async register(c, maxPerToken) {
      const reply = (await run(
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
      )) as [number, number] | 0;
      if (reply === 0) return 'full';
      const [connected, exp] = reply;
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
      const reply = (await run('connectionGet', [conns], [base, id])) as Reply[] | null;
      if (reply === null) return undefined;
      const [identity, scopes, resources, connected, exp, tokenId, tokenExp, channels] = reply as [
        string,
        string,
        string,
        string,
        string,
        string,
        string,
        string[],
      ];
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
      const reply = Number(await run('connectionSubscribe', [conns], [base, id, channel, maxChannels]));
      return reply === 1 ? 'subscribed' : reply === -1 ? 'full' : 'unknown';
    },
    async unsubscribe(id, channel) {
      return (await run('connectionUnsubscribe', [conns], [base, id, channel])) === 1;
    },
    async subscribers(channel, after, limit) {
      const ids = (await run(
        'connectionSubscribers',
        [conns],
        [base, channel, after ?? '', limit],
      )) as string[];
      return { connectionIds: ids.slice(0, limit), more: ids.length > limit };
    },
    async remove(id) {
      return (await run('connectionRemove', [conns], [base, id])) === 1;
    },
    async byToken(tokenId, after, limit) {
      const ids = (await run('connectionsOfToken', [conns], [base, tokenId, after ?? '', limit])) as string[];
      return { connectionIds: ids.slice(0, limit), more: ids.length > limit };
    },
    async withExpiredToken(limit) {
      return (await run('connectionsWithExpiredToken', [conns], [base, limit])) as string[];
    },
  };
}
