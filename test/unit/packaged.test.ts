/**
 * lib/storage/packaged.ts: what a packaged build carries, and the refusal of a configuration
 * needing more (the bundles themselves: test/functions/bundle.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig, type StorageConfigInput } from '../../lib/config/index.js';
import { ConfigError } from '../../lib/errors.js';
import { createStorage } from '../../lib/storage/index.js';
import { describePackage, packagedFor, packagedProblems } from '../../lib/storage/packaged.js';
import { everyType } from '../support/backends.js';

const pgUrl = { url: 'postgres://u@h/db' };
const hybrid: StorageConfigInput = { backend: 'hybrid', redis: { url: 'redis://h:6379' }, postgresql: pgUrl };
const config = (input: StorageConfigInput) => resolveConfig(input);

describe('packaged builds', () => {
  it('carry the configured backend, a hybrid the backends it uses, and the PostgreSQL driver in use', () => {
    expect(packagedFor(config({}))).toEqual({ backend: 'memory', backends: ['memory'], postgresDrivers: [] });
    expect(packagedFor(config({ backend: 'postgresql', postgresql: { ...pgUrl, driver: 'neon' } }))).toEqual({
      backend: 'postgresql',
      backends: ['postgresql'],
      postgresDrivers: ['neon'],
    });
    expect(packagedFor(config(hybrid))).toEqual({
      backend: 'hybrid',
      backends: ['hybrid', 'postgresql', 'redis'],
      postgresDrivers: ['pg'],
    });
    expect(describePackage(packagedFor(config(hybrid)))).toBe(
      'hybrid over postgresql with the pg driver and redis',
    );
  });

  it('a configuration the build can serve has no problems; the library (nothing packaged) serves any', () => {
    const packaged = packagedFor(config(hybrid));
    expect(packagedProblems(config(hybrid), packaged)).toEqual([]);
    expect(packagedProblems(config({ backend: 'redis' }), packaged)).toEqual([]);
    expect(
      packagedProblems(config({ backend: 'postgresql', postgresql: { driver: 'pglite' } }), packaged),
    ).toEqual([]);
    expect(packagedProblems(config({ backend: 'redis' }), undefined)).toEqual([]);
  });

  it('a configuration needing a backend or driver the build left out gets one problem each, saying how to repackage', () => {
    const redisOnly = packagedFor(config({ backend: 'redis' }));
    expect(packagedProblems(config({ backend: 'postgresql', postgresql: pgUrl }), redisOnly)).toEqual([
      'storage.backend: postgresql is not available in this build (packaged for redis; repackage with STORAGE_BACKEND=postgresql)',
    ]);
    const allRedis = config({
      ...hybrid,
      hybrid: {
        routing: everyType('redis'),
        fallback: { enabled: false },
      },
    });
    const hybridOverRedis = packagedFor(allRedis);
    expect(hybridOverRedis.backends).toEqual(['hybrid', 'redis']);
    expect(
      packagedProblems(config({ ...hybrid, postgresql: { ...pgUrl, driver: 'neon' } }), hybridOverRedis),
    ).toEqual([
      'hybrid: uses postgresql (routing, fallback or sync), which is not available in this build (packaged for hybrid over redis; repackage with this configuration)',
      'postgresql.driver: neon is not available in this build (packaged for hybrid over redis; repackage with POSTGRES_DRIVER=neon)',
    ]);
  });

  it('createStorage() checks nothing outside a packaged build', async () => {
    const storage = createStorage({ backend: 'memory' });
    expect(storage.backend).toBe('memory');
    await storage.close();
    expect(() => createStorage({ backend: 'mongo' as never })).toThrow(ConfigError);
  });
});
