/**
 * A backend host name that does not resolve is reported as such, with the host named: not
 * retryable for ENOTFOUND (the name does not exist: a configuration error), retryable for
 * EAI_AGAIN (no answer from DNS), through the PostgreSQL and Redis error mapping and the HTTP edge.
 */
import { lookup } from 'node:dns/promises';
import { Logger } from '@aws-lambda-powertools/logger';
import { describe, expect, it } from 'vitest';
import { errorResponse } from '../../functions/runtime/errors.js';
import { BackendUnavailableError } from '../../lib/errors.js';
import { createStorage } from '../../lib/storage/index.js';
import { mapSqlError } from '../../lib/storage/postgresql/sql.js';
import { mapRedisError } from '../../lib/storage/redis/client.js';
import { unresolvedHost } from '../../lib/storage/unresolved-host.js';

const HOST = 'db.does-not-exist.invalid';

/** What Node's resolver throws (`getaddrinfo ENOTFOUND <host>`), without asking a DNS server. */
function lookupError(code: 'ENOTFOUND' | 'EAI_AGAIN', host = HOST): Error {
  return Object.assign(new Error(`getaddrinfo ${code} ${host}`), {
    code,
    errno: code === 'ENOTFOUND' ? -3008 : -3001,
    syscall: 'getaddrinfo',
    hostname: host,
  });
}

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });

describe('unresolvedHost', () => {
  it("finds the host in the resolver's own error", async () => {
    const error = await lookup(HOST).catch((e: unknown) => e);
    expect(unresolvedHost(error)).toEqual({
      host: HOST,
      code: expect.stringMatching(/^(ENOTFOUND|EAI_AGAIN)$/),
    });
  });

  it('finds it in a cause, a WebSocket error event (Neon) and an AggregateError (pg dual-stack)', () => {
    const inner = lookupError('ENOTFOUND');
    expect(unresolvedHost(new Error('wrapped', { cause: inner }))).toEqual({ host: HOST, code: 'ENOTFOUND' });
    expect(unresolvedHost({ type: 'error', error: inner, message: inner.message })).toEqual({
      host: HOST,
      code: 'ENOTFOUND',
    });
    expect(unresolvedHost(new AggregateError([refused(), inner]))).toEqual({ host: HOST, code: 'ENOTFOUND' });
  });

  it('reads the host from the message when the error carries no hostname', () => {
    const bare = Object.assign(new Error(`getaddrinfo ENOTFOUND ${HOST}`), { code: 'ENOTFOUND' });
    expect(unresolvedHost(bare)).toEqual({ host: HOST, code: 'ENOTFOUND' });
  });

  it('finds nothing in other connection errors', () => {
    expect(unresolvedHost(refused())).toBeUndefined();
    expect(unresolvedHost(new Error('Command timed out'))).toBeUndefined();
    expect(unresolvedHost('a string')).toBeUndefined();
  });
});

describe('PostgreSQL and Redis error mapping', () => {
  it('PostgreSQL: ENOTFOUND is not retryable and names the host and the setting', () => {
    const mapped = mapSqlError(lookupError('ENOTFOUND')) as BackendUnavailableError;
    expect(mapped).toBeInstanceOf(BackendUnavailableError);
    expect(mapped.retryable).toBe(false);
    expect(mapped.message).toContain(`host "${HOST}" does not resolve`);
    expect(mapped.message).toContain('DATABASE_URL');
  });

  it('PostgreSQL: EAI_AGAIN names the host and stays retryable', () => {
    const mapped = mapSqlError(lookupError('EAI_AGAIN')) as BackendUnavailableError;
    expect(mapped.retryable).toBe(true);
    expect(mapped.message).toContain(`host "${HOST}" could not be resolved`);
  });

  it('PostgreSQL: a refused connection is still a retryable outage', () => {
    const mapped = mapSqlError(refused()) as BackendUnavailableError;
    expect(mapped.retryable).toBe(true);
    expect(mapped.message).not.toContain('resolve');
  });

  it('Redis: a command that gave up says why the client could not connect', () => {
    const gaveUp = Object.assign(new Error('Reached the max retries per request limit (which is 2).'), {
      name: 'MaxRetriesPerRequestError',
    });
    const unresolved = mapRedisError(gaveUp, undefined, lookupError('ENOTFOUND')) as BackendUnavailableError;
    expect(unresolved.retryable).toBe(false);
    expect(unresolved.message).toContain(`host "${HOST}" does not resolve`);
    expect(unresolved.message).toContain('REDIS_URL');

    const down = mapRedisError(gaveUp, undefined, refused()) as BackendUnavailableError;
    expect(down.retryable).toBe(true);
    expect(down.message).toMatch(
      /^redis unavailable: .*; cannot connect: connect ECONNREFUSED 127\.0\.0\.1:1$/,
    );
  });

  it('HTTP: 503 unavailable naming the host, without "retry later"', () => {
    const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    const response = errorResponse(mapSqlError(lookupError('ENOTFOUND')), logger);
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body)).toEqual({
      error: {
        code: 'unavailable',
        message: `postgresql is unavailable: host "${HOST}" does not resolve (a configuration error)`,
      },
    });
  });
});

describe('a storage configured with a host that does not resolve', () => {
  it.each([
    ['redis', { backend: 'redis', redis: { url: `redis://${HOST}:6379` } }],
    [
      'postgresql',
      { backend: 'postgresql', postgresql: { driver: 'pg', url: `postgres://app@${HOST}:5432/app` } },
    ],
  ] as const)('%s: the first call fails naming the host', async (_name, config) => {
    const storage = createStorage(config);
    try {
      const error = (await storage.kv.get('k').catch((e: unknown) => e)) as BackendUnavailableError;
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(error.message).toContain(`host "${HOST}"`);
      // ENOTFOUND where a DNS server answers; EAI_AGAIN where none does.
      expect(error.retryable).toBe(unresolvedHost(error.cause)?.code === 'EAI_AGAIN');
    } finally {
      await storage.close();
    }
  });
});
