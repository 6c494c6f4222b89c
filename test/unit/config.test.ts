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
