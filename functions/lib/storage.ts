import { configFromEnv } from '../../lib/config/index.js';
import { createStorage, type Storage } from '../../lib/storage/index.js';

// Module scope outlives one invocation: a warm container reuses the storage (and its
// connections) instead of reconnecting per request.
let storage: Storage | undefined;

/**
 * The container's storage, built from the environment on first use. A `ConfigError` is thrown
 * to the caller and nothing is cached, so the next invocation tries again (and fails the same
 * way, cheaply, since the environment of a container does not change).
 */
export function getStorage(): Storage {
  storage ??= createStorage(configFromEnv());
  return storage;
}
