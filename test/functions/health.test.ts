import type { Logger } from '@aws-lambda-powertools/logger';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HealthReport, Storage } from '../../lib/storage/types.js';
import { httpEvent, lambdaContext } from '../support/lambda.js';

// The handler reads its configuration from the environment once per container (module scope),
// so every test sets the environment first and imports a fresh copy of the modules.
const ENV = ['STORAGE_BACKEND', 'REDIS_URL', 'KEY_PREFIX', 'POWERTOOLS_LOG_LEVEL'] as const;
const saved = Object.fromEntries(ENV.map((name) => [name, process.env[name]]));

beforeEach(() => {
  vi.resetModules();
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

afterEach(() => {
  for (const name of ENV) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
  vi.doUnmock('../../functions/runtime/storage.js');
  vi.doUnmock('../../lib/storage/index.js');
  vi.restoreAllMocks();
});

async function loadHandler(env: Partial<Record<(typeof ENV)[number], string>> = {}) {
  Object.assign(process.env, env);
  const { handler } = await import('../../functions/health.js');
  const { logger } = (await import('../../functions/runtime/logger.js')) as { logger: Logger };
  const invoke = async () => {
    const response = await handler(httpEvent('GET', '/health'), lambdaContext('health'));
    return { ...response, json: JSON.parse(response.body) as Record<string, unknown> };
  };
  return { invoke, logger };
}

/** A storage whose `health()` answers what the test says; nothing else is called. */
function fakeStorage(health: () => Promise<HealthReport>): Storage {
  return { backend: 'redis', health } as unknown as Storage;
}

describe('GET /health', () => {
  it('answers 200 ok with the backend and its check on the memory backend', async () => {
    const { invoke } = await loadHandler({ STORAGE_BACKEND: 'memory' });
    const response = await invoke();

    expect(response.statusCode).toBe(200);
    expect(response.headers?.['content-type']).toBe('application/json');
    expect(Object.keys(response.json).sort()).toEqual(['backend', 'checks', 'status']);
    expect(response.json).toEqual({
      status: 'ok',
      backend: 'memory',
      checks: { memory: { ok: true, latencyMs: expect.any(Number) } },
    });
  });

  it('creates the storage once per container and reuses it on warm invocations', async () => {
    const created: Storage[] = [];
    vi.doMock('../../lib/storage/index.js', async (importOriginal) => {
      const original = await importOriginal<typeof import('../../lib/storage/index.js')>();
      return {
        ...original,
        createStorage: (...args: Parameters<typeof original.createStorage>) => {
          const storage = original.createStorage(...args);
          created.push(storage);
          return storage;
        },
      };
    });
    const { invoke } = await loadHandler({ STORAGE_BACKEND: 'memory' });

    expect((await invoke()).statusCode).toBe(200);
    expect((await invoke()).statusCode).toBe(200);
    expect(created).toHaveLength(1);
  });

  it('answers 503 down naming the problem, without a stack, when the configuration is invalid', async () => {
    const { invoke, logger } = await loadHandler({ STORAGE_BACKEND: 'bogus' });
    const logged = vi.spyOn(logger, 'error');
    const response = await invoke();

    expect(response.statusCode).toBe(503);
    expect(response.headers?.['content-type']).toBe('application/json');
    expect(response.json).toEqual({
      status: 'down',
      backend: 'bogus',
      checks: {},
      error: { code: 'unavailable', message: expect.stringContaining('invalid configuration') },
    });
    const { message } = response.json.error as { message: string };
    expect(message).toMatch(/backend/);
    expect(message).toMatch(/memory/); // names what is allowed
    expect(response.body).not.toMatch(/\n|\bat .*:\d+:\d+|ConfigError/);
    expect(logged).toHaveBeenCalledWith(
      'invalid storage configuration',
      expect.objectContaining({ problems: expect.any(Array) }),
    );
  });

  it('answers 503 down when the backend reports down, without the checks’ driver messages', async () => {
    vi.doMock('../../functions/runtime/storage.js', () => ({
      getStorage: () =>
        fakeStorage(async () => ({
          status: 'down',
          backend: 'redis',
          checks: { redis: { ok: false, latencyMs: 5001, error: 'connect ECONNREFUSED 10.0.0.7:6379' } },
        })),
    }));
    const { invoke } = await loadHandler();
    const response = await invoke();

    expect(response.statusCode).toBe(503);
    expect(response.json).toEqual({
      status: 'down',
      backend: 'redis',
      checks: { redis: { ok: false, latencyMs: 5001 } },
    });
    expect(response.body).not.toContain('ECONNREFUSED');
  });

  it('answers 200 degraded when part of the storage serves', async () => {
    vi.doMock('../../functions/runtime/storage.js', () => ({
      getStorage: () =>
        fakeStorage(async () => ({
          status: 'degraded',
          backend: 'hybrid',
          checks: { redis: { ok: false, latencyMs: 3 }, postgresql: { ok: true, latencyMs: 2 } },
        })),
    }));
    const { invoke } = await loadHandler();
    const response = await invoke();

    expect(response.statusCode).toBe(200);
    expect(response.json.status).toBe('degraded');
  });

  it('answers 500 with a logged error id, never the error itself, when something unexpected breaks', async () => {
    vi.doMock('../../functions/runtime/storage.js', () => ({
      getStorage: () =>
        fakeStorage(async () => {
          throw new TypeError('secret internals');
        }),
    }));
    const { invoke, logger } = await loadHandler();
    const logged = vi.spyOn(logger, 'error');
    const response = await invoke();

    expect(response.statusCode).toBe(500);
    expect(response.json).toEqual({
      error: { code: 'internal', message: expect.stringMatching(/^internal error \(id [0-9a-f-]{36}\)$/) },
    });
    expect(response.body).not.toContain('secret internals');
    const id = /id ([0-9a-f-]{36})/.exec(response.body)![1];
    expect(logged).toHaveBeenCalledWith('unexpected error', expect.objectContaining({ errorId: id }));
  });
});
