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

export function createRedisClient(config: StorageConfig, overrides: RedisOptions = {}): RedisClient {
  const { url, options } = redisOptions(config);
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
  /Connection is closed|Command timed out|Stream isn't writeable|Reached the max retries|ETIMEDOUT|ECONNREFUSED|ECONNRESET|EPIPE|ENOTFOUND|EAI_AGAIN|CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|READONLY|BUSY|Failed to refresh slots|None of startup nodes/;

/**
 * Maps a driver error to a typed one: anything about reaching Redis is `BackendUnavailableError`.
 * `connectError` is the client's last connection error while it is not connected: a command
 * that gave up then ("Reached the max retries…") fails for that reason, which is what the
 * message says (a host that does not resolve: see unresolved-host.ts).
 */
export function mapRedisError(error: unknown, connectError?: Error): unknown {
  if (error instanceof StorageError) return error;
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    const transient =
      TRANSIENT.test(error.message) ||
      (typeof code === 'string' && /^E[A-Z]+$/.test(code)) ||
      error.name === 'MaxRetriesPerRequestError' ||
      error.name === 'AbortError';
    if (transient) {
      const why = connectError ?? error;
      const unresolved = unresolvedHostError('redis', why, 'redis.url (REDIS_URL)');
      if (unresolved) return unresolved;
      const message = connectError ? `cannot connect: ${connectError.message}` : error.message;
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
