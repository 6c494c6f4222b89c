/**
 * ioredis clients fit for Lambda: built once per container (the storage is built at module
 * scope and reused by warm invocations), connecting in the background during init, with
 * keep-alive, connect and command timeouts, bounded retries per command, and TLS for
 * `rediss://` (ElastiCache in-transit encryption, Upstash).
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { StorageConfig } from '../../config/index.js';
import { BackendUnavailableError, ConfigError, StorageError } from '../../errors.js';
import { unresolvedHostError } from '../unresolved-host.js';

export type RedisClient = Redis | Cluster;

interface ParsedUrl {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  tls: boolean;
}

function parseUrl(url: string): ParsedUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError([`redis.url: not a URL: ${JSON.stringify(url.replace(/\/\/[^@]*@/, '//***@'))}`]);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError([`redis.url: expected redis:// or rediss://, got ${parsed.protocol}//`]);
  }
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : undefined;
  if (db !== undefined && !Number.isInteger(db))
    throw new ConfigError(['redis.url: the path must be a database number']);
  const decode = (part: string, what: string) => {
    try {
      return part ? decodeURIComponent(part) : undefined;
    } catch {
      throw new ConfigError([`redis.url: the ${what} is not valid percent-encoding`]);
    }
  };
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 6379,
    username: decode(parsed.username, 'user name'),
    password: decode(parsed.password, 'password'),
    db,
    tls: parsed.protocol === 'rediss:',
  };
}

/** Options shared by every connection of one storage (commands, subscriber, blocking waits). */
export function redisOptions(config: StorageConfig): { url: ParsedUrl; options: RedisOptions } {
  const url = parseUrl(config.redis.url);
  const r = config.redis;
  const options: RedisOptions = {
    username: url.username,
    password: r.password ?? url.password,
    db: url.db,
    tls: url.tls || r.tls ? { servername: url.host } : undefined,
    connectTimeout: Math.round(r.connectTimeout * 1000),
    commandTimeout: Math.round(r.commandTimeout * 1000),
    keepAlive: 30_000,
    noDelay: true,
    maxRetriesPerRequest: r.maxRetriesPerRequest,
    // Reconnect forever with a capped back-off; each command gives up after its own retries.
    retryStrategy: (times) => Math.min(times * 100, 2000),
    // Fail over to a new primary (ElastiCache) instead of writing to a replica.
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
    enableReadyCheck: true,
  };
  return { url, options };
}

/** `host:port` (the schema checked the shape) as ioredis wants a Sentinel's address. */
function sentinelAddress(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(text.slice(at + 1)) };
}

export function createRedisClient(config: StorageConfig, overrides: RedisOptions = {}): RedisClient {
  const { url, options } = redisOptions(config);
  const { sentinels } = config.redis;
  if (sentinels) {
    // The primary's address comes from the Sentinels, asked again on every reconnect: a
    // promoted replica is found without a restart (and a demoted primary's READONLY reconnects).
    return new Redis({
      ...options,
      sentinels: sentinels.map(sentinelAddress),
      name: config.redis.sentinelName,
      sentinelPassword: config.redis.sentinelPassword,
      // Every Sentinel unreachable: look again, with the same capped back-off as a reconnect.
      sentinelRetryStrategy: (times) => Math.min(times * 100, 2000),
      ...overrides,
    });
  }
  if (config.redis.cluster) {
    return new Cluster([{ host: url.host, port: url.port }], {
      redisOptions: { ...options, db: undefined, ...overrides },
      // ElastiCache TLS certificates name the configuration endpoint, not node IPs.
      dnsLookup: (address, callback) => callback(null, address),
      slotsRefreshTimeout: options.connectTimeout,
      clusterRetryStrategy: (times) => Math.min(times * 100, 2000),
    });
  }
  return new Redis({ host: url.host, port: url.port, ...options, ...overrides });
}

/** Failures to reach Redis or to get an answer in time: the operation may be retried. */
const TRANSIENT =
  /Connection is closed|Command timed out|Stream isn't writeable|Reached the max retries|ETIMEDOUT|ECONNREFUSED|ECONNRESET|EPIPE|ENOTFOUND|EAI_AGAIN|CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|READONLY|BUSY|Failed to refresh slots|None of startup nodes|sentinel/i;

/** What the settings that shape a failure say, for messages in this project's words. */
export interface FailureContext {
  commandTimeoutSeconds: number;
  maxRetriesPerRequest: number;
}

/**
 * What happened, said in this project's words (the driver's own message stays the error's
 * `cause`). Unknown failures keep the driver's message.
 */
export function describeRedisFailure(error: Error, context?: FailureContext): string {
  const message = error.message;
  const code = (error as NodeJS.ErrnoException).code;
  if (error.name === 'MaxRetriesPerRequestError' || /Reached the max retries/.test(message)) {
    const retries = context?.maxRetriesPerRequest;
    return retries === undefined
      ? 'the connection dropped and reconnecting failed; the command was not sent'
      : `the connection dropped and ${retries + 1} reconnect attempts failed (redis.maxRetriesPerRequest is ${retries}); the command was not sent`;
  }
  if (/Command timed out/.test(message)) {
    return context
      ? `no reply within redis.commandTimeout (${context.commandTimeoutSeconds} s); the command may or may not have run`
      : 'no reply in time; the command may or may not have run';
  }
  if (error.name === 'AbortError' || /aborted due to connection close/.test(message)) {
    return 'the connection closed while the command was in flight; it may or may not have run';
  }
  if (/Connection is closed|Stream isn't writeable/.test(message)) return 'the connection is closed';
  if (code === 'ECONNREFUSED') return 'connection refused (nothing listens at the address)';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'the server closed the connection';
  if (code === 'ETIMEDOUT') return 'connecting timed out (redis.connectTimeout)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve';
  if (/All sentinels are unreachable/i.test(message)) return 'no Sentinel answers (redis.sentinels)';
  if (/sentinel/i.test(message)) return `the Sentinels name no reachable primary (${message})`;
  if (/^READONLY/.test(message)) return 'the server is a replica now (a failover is under way)';
  if (/^LOADING/.test(message)) return 'Redis is still loading its data after a restart';
  if (/^(MASTERDOWN|CLUSTERDOWN|TRYAGAIN)/.test(message)) return `a failover is under way (${message})`;
  if (/^BUSY/.test(message)) return 'Redis is busy running a script';
  return message;
}

/**
 * Maps a driver error to a typed one: anything about reaching Redis is `BackendUnavailableError`,
 * with a message that says what happened (see `describeRedisFailure`). `connectError` is the
 * client's last connection error while it is not connected: a command that gave up then
 * ("Reached the max retries…") fails for that reason, which is what the message says (a host
 * that does not resolve: see unresolved-host.ts).
 */
export function mapRedisError(error: unknown, context?: FailureContext, connectError?: Error): unknown {
  if (error instanceof StorageError) return error;
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (
      TRANSIENT.test(error.message) ||
      (typeof code === 'string' && /^E[A-Z]+$/.test(code)) ||
      error.name === 'MaxRetriesPerRequestError' ||
      error.name === 'AbortError'
    ) {
      const unresolved = unresolvedHostError('redis', connectError ?? error, 'redis.url (REDIS_URL)');
      if (unresolved) return unresolved;
      const what = describeRedisFailure(error, context);
      const message = connectError ? `${what}; cannot connect: ${connectError.message}` : what;
      return new BackendUnavailableError('redis', message, { cause: error });
    }
    // Any other reply is a refusal (NOPERM, OOM, WRONGTYPE…): retrying meets it again.
    if (error.name === 'ReplyError') {
      return new BackendUnavailableError('redis', error.message, { cause: error, retryable: false });
    }
  }
  return error;
}

/** A new connection like `client` (same server or cluster, same options) with `overrides`. */
export function duplicateClient(client: RedisClient, overrides: RedisOptions): RedisClient {
  if (client instanceof Cluster) {
    return client.duplicate(undefined, { redisOptions: { ...client.options.redisOptions, ...overrides } });
  }
  return client.duplicate(overrides);
}
