import { resolveConfig, type StorageConfig, type StorageConfigInput } from '../config/index.js';
import type { Storage } from './types.js';

export * from './types.js';

/**
 * Builds the storage for `config.backend`. Synchronous: connections open in the background
 * and the first operation waits for them, so a Lambda container can build it at module scope.
 */
export function createStorage(input: StorageConfigInput | StorageConfig = {}): Storage {
  const config = resolveConfig(input);
  throw new Error(`backend ${config.backend} not built yet`);
}
