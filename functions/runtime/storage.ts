import { loadConfig, resolveConfig, type StorageConfig } from '../../lib/config/index.js';
import type { HybridControl } from '../../lib/storage/hybrid/index.js';
import { createStorage, hybridControl, type Storage } from '../../lib/storage/index.js';
import { instrumentStorage } from './instrument.js';
import { logger } from './logger.js';
import { metricSink } from './metrics.js';
import { currentSecrets, noteFailure, onSecretsChanged } from './secrets.js';

// Module scope outlives one invocation: a warm container reuses the storage (and its
// connections) instead of reconnecting per request.
let config: StorageConfig | undefined;
let storage: Storage | undefined;
/** The hybrid's control of the storage built here (the instrumented one is another object). */
let control: HybridControl | undefined;
/** Whether `storage` was built here (and is rebuilt when a secret it was built with changes). */
let owned = false;

/**
 * The container's configuration, read once from the environment and the secrets it references
 * (functions/runtime/secrets.ts). A `ConfigError` is thrown to the caller and nothing is cached, so
 * the next invocation tries again (and fails the same way, cheaply, since the environment of a
 * container does not change).
 */
export function getStorageConfig(): StorageConfig {
  config ??= loadConfig({ env: { ...process.env, ...currentSecrets() } });
  return config;
}

/** The container's storage, built from `getStorageConfig()` on first use. */
export function getStorage(): Storage {
  if (!storage) {
    // lib's metrics (the hybrid's, PostgreSQL deadlocks) go out as EMF; every store call is traced
    // where tracing is on, and an authentication failure has the secrets fetched again.
    const built = createStorage(getStorageConfig(), { metrics: metricSink });
    control = hybridControl(built);
    storage = instrumentStorage(built, noteFailure);
    owned = true;
  }
  return storage;
}

/** The hybrid's counters and journals, when the storage is a hybrid. */
export function getHybridControl(): HybridControl | undefined {
  getStorage();
  return control;
}

/**
 * Serves the handlers from a storage built elsewhere (a process embedding them, tests), with
 * the configuration it was built from (default: the defaults). The caller keeps ownership.
 */
export function useStorage(instance: Storage, instanceConfig: StorageConfig = resolveConfig({})): void {
  storage = instance;
  control = hybridControl(instance);
  config = instanceConfig;
  owned = false;
}

// A rotated secret: the configuration is read again and the storage rebuilt on next use. The
// old one is closed: between invocations nothing uses it.
onSecretsChanged(() => {
  if (!owned) return;
  const previous = storage;
  config = undefined;
  storage = undefined;
  control = undefined;
  void previous?.close().catch((error: unknown) => logger.warn('previous storage did not close', { error }));
});
