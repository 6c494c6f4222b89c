import { describe, expect, it } from 'vitest';
import { configFromEnv, resolveConfig } from '../../lib/config/index.js';
import { ConfigError } from '../../lib/errors.js';
import { globMatcher } from '../../lib/glob.js';

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveConfig', () => {
  it('fills every default', () => {
    const config = resolveConfig({});
    expect(config.backend).toBe('memory');
    expect(config.keyPrefix).toBe('kubently:');
    expect(config.redis.url).toBe('redis://127.0.0.1:6379');
    expect(config.limits.maxValueBytes).toBe(262_144);
    expect(config.sessions.defaultTtl).toBe(300);
    expect(config.queues).toEqual({ maxAttempts: 5, dedupWindow: 300 });
    expect(config.events.maxHistory).toBe(1000);
  });

  it('does not change its input', () => {
    const input = { redis: { url: 'redis://h:1' } };
    resolveConfig(input);
    expect(input).toEqual({ redis: { url: 'redis://h:1' } });
  });

  it('reports every bad field with its path at once', () => {
    const problems = problemsOf(() =>
      resolveConfig({
        backend: 'mongo' as never,
        queues: { maxAttempts: 0 },
        limits: { maxValueBytes: -5 },
        sessions: { defaultTtl: 'long' as never },
        redis: { bogus: true } as never,
      }),
    );
    expect(problems.some((p) => p.startsWith('backend:') && p.includes('"redis"'))).toBe(true);
    expect(problems.some((p) => p.startsWith('queues.maxAttempts:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('limits.maxValueBytes:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('sessions.defaultTtl:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('redis.bogus:') && p.includes('Unexpected property'))).toBe(
      true,
    );
  });

  it('refuses hash-tag braces in the key prefix', () => {
    expect(problemsOf(() => resolveConfig({ keyPrefix: 'a{b}:' }))[0]).toMatch(/^keyPrefix:/);
  });
});

describe('configFromEnv', () => {
  it('reads the Lambda environment', () => {
    const config = configFromEnv({
      STORAGE_BACKEND: 'redis',
      REDIS_URL: 'rediss://cache:6380',
      KEY_PREFIX: 'k8s:',
      QUEUE_MAX_ATTEMPTS: '3',
    });
    expect(config.backend).toBe('redis');
    expect(config.redis.url).toBe('rediss://cache:6380');
    expect(config.keyPrefix).toBe('k8s:');
    expect(config.queues.maxAttempts).toBe(3);
  });

  it('reads the PostgreSQL settings', () => {
    const config = configFromEnv({
      STORAGE_BACKEND: 'postgresql',
      DATABASE_URL: 'postgres://app:secret@db:5432/kubently',
      POSTGRES_DRIVER: 'neon',
      POSTGRES_SCHEMA: 'storage',
      NEON_WS_PROXY: '127.0.0.1:4444/v1',
    });
    expect(config.backend).toBe('postgresql');
    expect(config.postgresql).toMatchObject({
      url: 'postgres://app:secret@db:5432/kubently',
      driver: 'neon',
      schema: 'storage',
      wsProxy: '127.0.0.1:4444/v1',
    });
  });

  it('names DATABASE_URL when the postgresql backend has none or a bad one', () => {
    const [missing] = problemsOf(() => configFromEnv({ STORAGE_BACKEND: 'postgresql' }));
    expect(missing).toMatch(/^postgresql\.url:.*DATABASE_URL/);
    const [garbled] = problemsOf(() =>
      configFromEnv({ STORAGE_BACKEND: 'postgresql', DATABASE_URL: 'db:5432' }),
    );
    expect(garbled).toMatch(/^postgresql\.url:.*DATABASE_URL/);
    const [wrongScheme] = problemsOf(() =>
      configFromEnv({ STORAGE_BACKEND: 'postgresql', DATABASE_URL: 'mysql://db/x' }),
    );
    expect(wrongScheme).toMatch(/^postgresql\.url: expected a postgres:\/\/ or postgresql:\/\/ URL/);
    // PGlite needs no URL; neither does a backend that does not use Postgres.
    expect(
      configFromEnv({ STORAGE_BACKEND: 'postgresql', POSTGRES_DRIVER: 'pglite' }).postgresql.driver,
    ).toBe('pglite');
    expect(configFromEnv({ STORAGE_BACKEND: 'redis' }).postgresql.url).toBeUndefined();
  });

  it('refuses a schema that is not a plain identifier and an unknown driver', () => {
    const problems = problemsOf(() =>
      resolveConfig({ postgresql: { schema: 'a"; DROP SCHEMA public; --', driver: 'mysql' as never } }),
    );
    expect(problems.some((p) => p.startsWith('postgresql.schema:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('postgresql.driver:') && p.includes('"pglite"'))).toBe(true);
  });

  it('names a variable that is not a number', () => {
    expect(problemsOf(() => configFromEnv({ MAX_VALUE_BYTES: 'lots' }))[0]).toMatch(/^MAX_VALUE_BYTES:/);
  });
});

describe('the sections the file added', () => {
  it('fills their defaults', () => {
    const config = resolveConfig({});
    expect(config.hybrid).toEqual({
      routing: {
        sessions: 'postgresql',
        authentication: 'postgresql',
        audit: 'postgresql',
        queues: 'redis',
        cache: 'redis',
        pubsub: 'redis',
      },
      fallback: { enabled: true, order: ['redis', 'postgresql'], timeout: 0.5 },
      sync: { enabled: false, async: true },
    });
    expect(config.migration).toEqual({ dualWrite: false, syncInterval: 60, validationEnabled: false });
    expect(config.ttl).toEqual({ enabled: true, interval: 300, batchSize: 1000 });
    expect(config.websocket).toEqual({ fanoutThreshold: 50, maxConnectionsPerToken: 10 });
    expect(config.postgresql.minPoolSize).toBe(0);
    expect(config.redis.poolSize).toBeUndefined();
    expect(config.redis.maxConnections).toBeUndefined();
  });

  it('never shares a default list between configurations', () => {
    const first = resolveConfig({});
    first.hybrid.fallback.order.pop();
    expect(resolveConfig({}).hybrid.fallback.order).toEqual(['redis', 'postgresql']);
  });

  it('refuses a hybrid routed to a backend without connection settings, by internal name', () => {
    const problems = problemsOf(() =>
      resolveConfig({
        backend: 'hybrid',
        postgresql: { url: 'postgres://db/x' },
        hybrid: { fallback: { enabled: false } },
      }),
    );
    expect(problems).toEqual([
      'hybrid.routing.queues: routes to redis, which has no connection settings (set redis.url or REDIS_URL)',
      'hybrid.routing.cache: routes to redis, which has no connection settings (set redis.url or REDIS_URL)',
      'hybrid.routing.pubsub: routes to redis, which has no connection settings (set redis.url or REDIS_URL)',
    ]);
    // Given explicitly (even the default URL), it is configured; dual-write needs both sides.
    expect(
      resolveConfig({
        backend: 'hybrid',
        redis: { url: 'redis://127.0.0.1:6379' },
        postgresql: { driver: 'pglite' },
      }).backend,
    ).toBe('hybrid');
    const dual = problemsOf(() =>
      resolveConfig({
        backend: 'hybrid',
        redis: { url: 'redis://r:6379' },
        hybrid: {
          routing: { sessions: 'redis', authentication: 'redis', audit: 'redis' },
          fallback: { enabled: false },
        },
        migration: { dualWrite: true },
      }),
    );
    expect(dual).toEqual([expect.stringMatching(/^postgresql\.url: required for driver pg/)]);
  });

  it('refuses repeated or unknown fallback backends, min above max, and bad Redis URLs in use', () => {
    expect(problemsOf(() => resolveConfig({ hybrid: { fallback: { order: ['redis', 'redis'] } } }))).toEqual([
      'hybrid.fallback.order: must not name an item twice, got ["redis", "redis"]',
    ]);
    expect(problemsOf(() => resolveConfig({ hybrid: { fallback: { order: ['memory' as never] } } }))[0]).toBe(
      'hybrid.fallback.order.0: must be one of "redis", "postgresql", got "memory"',
    );
    expect(problemsOf(() => resolveConfig({ postgresql: { poolSize: 2, minPoolSize: 3 } }))).toEqual([
      'postgresql.minPoolSize: must be at most postgresql.poolSize (2), got 3',
    ]);
    expect(problemsOf(() => resolveConfig({ backend: 'redis', redis: { url: 'cache:6379' } }))[0]).toMatch(
      /^redis\.url: (not a URL|expected a redis:\/\/ or rediss:\/\/ URL)/,
    );
    // Not in use: not checked.
    expect(resolveConfig({ backend: 'memory', redis: { url: 'cache:6379' } }).backend).toBe('memory');
  });

  it('keeps secrets out of messages', () => {
    const problems = problemsOf(() =>
      resolveConfig({ redis: { password: 12345 as never }, auth: { bootstrapTokenHash: 'hunter2' } }),
    );
    expect(problems.join('\n')).not.toMatch(/12345|hunter2/);
  });
});

describe('configFromEnv, the added variables', () => {
  it('reads REDIS_PASSWORD and FANOUT_THRESHOLD', () => {
    const config = configFromEnv({ REDIS_PASSWORD: 'pw', FANOUT_THRESHOLD: '0', REDIS_CLUSTER: '1' });
    expect(config.redis.password).toBe('pw');
    expect(config.websocket.fanoutThreshold).toBe(0);
    expect(config.redis.cluster).toBe(true);
    expect(configFromEnv({ REDIS_CLUSTER: 'false' }).redis.cluster).toBe(false);
  });

  it('names every variable it cannot read, at once', () => {
    expect(
      problemsOf(() =>
        configFromEnv({ MAX_VALUE_BYTES: 'lots', FANOUT_THRESHOLD: ' ', REDIS_CLUSTER: 'yes' }),
      ),
    ).toEqual([
      'REDIS_CLUSTER: expected true, false, 1 or 0, got "yes"',
      'MAX_VALUE_BYTES: expected a number, got "lots"',
      'FANOUT_THRESHOLD: expected a number, got " "',
    ]);
  });

  it('applies the environment on top of a base', () => {
    const config = configFromEnv(
      { QUEUE_MAX_ATTEMPTS: '2' },
      { queues: { maxAttempts: 9, dedupWindow: 10 } },
    );
    expect(config.queues).toEqual({ maxAttempts: 2, dedupWindow: 10 });
  });
});

describe('globMatcher', () => {
  it('matches * against any run of characters and nothing else specially', () => {
    expect(globMatcher('*')('anything')).toBe(true);
    expect(globMatcher('cluster-*')('cluster-a')).toBe(true);
    expect(globMatcher('cluster-*')('cluster-')).toBe(true);
    expect(globMatcher('cluster-*')('other')).toBe(false);
    expect(globMatcher('a*b*c')('aXXbYYc')).toBe(true);
    expect(globMatcher('a.b')('aXb')).toBe(false);
    expect(globMatcher('(x)+')('(x)+')).toBe(true);
    expect(globMatcher('exact')('exact')).toBe(true);
    expect(globMatcher('exact')('exactly')).toBe(false);
    expect(globMatcher('a*')('a\nb')).toBe(true);
  });
});
