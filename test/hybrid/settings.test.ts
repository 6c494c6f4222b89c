/** The hybrid reads its routing, fallback and dual-write from the configuration (lib/config). */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../lib/config/index.js';
import { backendsInUse, hybridSettings } from '../../lib/storage/hybrid/index.js';
import { everyType } from '../support/backends.js';

const base = {
  backend: 'hybrid' as const,
  redis: { url: 'redis://127.0.0.1:6379' },
  postgresql: { url: 'postgres://postgres@127.0.0.1:5432/test' },
};

describe('hybrid settings', () => {
  it("the seed's defaults: sessions, authentication and audit on PostgreSQL; queues, cache and pubsub on Redis; fallback on", () => {
    const settings = hybridSettings(resolveConfig(base));
    expect(settings.routing).toEqual({
      sessions: 'postgresql',
      authentication: 'postgresql',
      audit: 'postgresql',
      queues: 'redis',
      cache: 'redis',
      pubsub: 'redis',
    });
    expect(settings.fallback).toEqual({ enabled: true, order: ['redis', 'postgresql'] });
    expect(settings.sync).toEqual({ enabled: false, async: true });
    expect(settings.operationTimeoutMs).toBe(500);
    expect(settings.journalCheckMs).toBe(250);
    expect([...backendsInUse(settings)].sort()).toEqual(['postgresql', 'redis']);
  });

  it('hybrid.fallback.timeout sets the failover deadline; the first use gets at least as long', () => {
    const slow = hybridSettings(resolveConfig({ ...base, hybrid: { fallback: { timeout: 8 } } }));
    expect(slow.operationTimeoutMs).toBe(8000);
    expect(slow.firstUseTimeoutMs).toBe(8000);
    const fast = hybridSettings(resolveConfig({ ...base, hybrid: { fallback: { timeout: 0.2 } } }));
    expect(fast.operationTimeoutMs).toBe(200);
    expect(fast.firstUseTimeoutMs).toBe(5000);
    expect(hybridSettings(resolveConfig(base), { operationTimeoutMs: 50 }).operationTimeoutMs).toBe(50);
  });

  it('routing, fallback and sync come from the configuration; migration.dualWrite turns dual-write on', () => {
    const settings = hybridSettings(
      resolveConfig({
        ...base,
        hybrid: {
          routing: { cache: 'postgresql', queues: 'postgresql', pubsub: 'postgresql' },
          fallback: { enabled: false },
          sync: { async: false },
        },
        migration: { dualWrite: true },
      }),
    );
    expect(settings.routing).toMatchObject({
      cache: 'postgresql',
      queues: 'postgresql',
      sessions: 'postgresql',
    });
    expect(settings.fallback.enabled).toBe(false);
    expect(settings.sync).toEqual({ enabled: true, async: false });
  });

  it('only the backends routing, fallback and dual-write name are connected', () => {
    const allRedis = hybridSettings(
      resolveConfig({
        ...base,
        hybrid: {
          routing: everyType('redis'),
          fallback: { enabled: false },
        },
      }),
    );
    expect([...backendsInUse(allRedis)]).toEqual(['redis']);
  });
});
