import { resolveConfig, type StorageConfig, type StorageConfigInput } from '../config/index.js';
import { ConfigError } from '../errors.js';
import type { MetricSink } from '../metrics.js';
import type { Driver } from './driver.js';
import { createFacade } from './facade.js';
// A packaged function gets stand-ins for the backend modules its configuration does not use
// (lib/storage/packaged.ts): only their create…Driver() comes from them; what the factory needs
// whatever the backend (the hybrid's settings) comes from a module that is always bundled.
import { createHybridDriver, type HybridControl } from './hybrid/index.js';
import { backendsInUse, type HybridOptions, hybridSettings } from './hybrid/settings.js';
import { createMemoryDriver } from './memory/index.js';
import { packagedProblems } from './packaged.js';
import { createPostgresDriver, type PostgresDriverOptions } from './postgresql/index.js';
import { createRedisDriver, type RedisDriverOptions } from './redis/index.js';
import type { Storage } from './types.js';

export * from './types.js';

export interface CreateStorageOptions {
  /** Redis: reuse this client instead of opening one (the storage will not close it). */
  redis?: RedisDriverOptions;
  /** PostgreSQL: reuse this SQL connection or PGlite instance (the storage will not close it). */
  postgresql?: PostgresDriverOptions;
  /** Hybrid: tuning and a metrics sink of its own (see lib/storage/hybrid/settings.ts). */
  hybrid?: HybridOptions;
  /** Receives lib's metrics (lib/metrics.ts): PostgreSQL deadlocks, and the hybrid's unless `hybrid.metrics`. */
  metrics?: MetricSink;
}

const hybridControls = new WeakMap<Storage, HybridControl>();

/** The hybrid's counters, breakers and reconciler, or undefined for another backend. */
export function hybridControl(storage: Storage): HybridControl | undefined {
  return hybridControls.get(storage);
}

/**
 * Builds the storage for `config.backend`. Synchronous: connections open in the background
 * and the first operation waits for them, so a Lambda container can build it at module scope
 * and reuse it across warm invocations. A `ConfigError` when the configuration is invalid, or
 * needs a backend or driver this build was packaged without.
 */
export function createStorage(
  input: StorageConfigInput | StorageConfig = {},
  options: CreateStorageOptions = {},
): Storage {
  const config = resolveConfig(input);
  const missing = packagedProblems(config);
  if (missing.length > 0) throw new ConfigError(missing);
  if (config.backend === 'hybrid') {
    const settings = hybridSettings(config, { metrics: options.metrics, ...options.hybrid });
    const driver = createHybridDriver(
      settings,
      {
        redis: () => createRedisDriver(config, options.redis),
        postgresql: () => createPostgresDriver(withSyncLeases(config), postgresOptions(options)),
      },
      backendsInUse(settings),
    );
    // The facade's health pings one driver; a hybrid reports each backend it composes.
    const storage = Object.assign(createFacade(driver, config), { health: () => driver.control.health() });
    hybridControls.set(storage, driver.control);
    return storage;
  }
  return createFacade(createDriver(config, options), config);
}

/**
 * The hybrid's PostgreSQL backend commits lease writes synchronously, whatever
 * `postgresql.leaseCommit` says: the hybrid replays its journal from a PostgreSQL queue, and an
 * ack a server crash undid would replay an entry again after newer writes had replaced it.
 */
function withSyncLeases(config: StorageConfig): StorageConfig {
  return { ...config, postgresql: { ...config.postgresql, leaseCommit: 'sync' } };
}

function postgresOptions(options: CreateStorageOptions): PostgresDriverOptions {
  return options.metrics ? { metrics: options.metrics, ...options.postgresql } : (options.postgresql ?? {});
}

function createDriver(config: StorageConfig, options: CreateStorageOptions): Driver {
  switch (config.backend) {
    case 'memory':
      return createMemoryDriver(config);
    case 'redis':
      return createRedisDriver(config, options.redis);
    case 'postgresql':
      return createPostgresDriver(config, postgresOptions(options));
    default:
      throw new ConfigError([
        `backend: ${config.backend} is not available in this build (allowed: memory, redis, postgresql, hybrid)`,
      ]);
  }
}
