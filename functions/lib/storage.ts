import { loadConfig, resolveConfig, type StorageConfig } from '../../lib/config/index.js';
import { emfSink } from '../../lib/storage/hybrid/metrics.js';
import { createStorage, type Storage } from '../../lib/storage/index.js';
import { metrics } from './metrics.js';

// Module scope outlives one invocation: a warm container reuses the storage (and its
// connections) instead of reconnecting per request.
let config: StorageConfig | undefined;
let storage: Storage | undefined;

/**
 * The container's configuration, read from the environment once. A `ConfigError` is thrown to
 * the caller and nothing is cached, so the next invocation tries again (and fails the same
 * way, cheaply, since the environment of a container does not change).
 */
export function getStorageConfig(): StorageConfig {
  config ??= loadConfig();
  return config;
}

/** The container's storage, built from `getStorageConfig()` on first use. */
export function getStorage(): Storage {
  // A hybrid's routing decisions, fallbacks, sync lag and cache hits go out as EMF metrics.
  storage ??= createStorage(getStorageConfig(), { hybrid: { metrics: emfSink(metrics) } });
  return storage;
}

/**
 * Serves the handlers from a storage built elsewhere (a process embedding them, tests), with
 * the configuration it was built from (default: the defaults). The caller keeps ownership.
 */
export function useStorage(instance: Storage, instanceConfig: StorageConfig = resolveConfig({})): void {
  storage = instance;
  config = instanceConfig;
}
