/**
 * The per-backend fixture the conformance modules receive: a shared Storage for the backend's
 * describe block plus fresh Storages with config overrides, every one closed after use.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { StorageConfigInput } from '../../lib/config/index.js';
import type { Storage } from '../../lib/storage/types.js';
import type { Backend, Capabilities } from './backends.js';

export interface Fixture {
  backend: Backend;
  caps: Capabilities;
  /** The Storage shared by the backend's tests (built in beforeAll, closed in afterAll). */
  storage(): Storage;
  /** A fresh Storage with `overrides` merged into the config; closed after the current test. */
  withConfig(overrides: StorageConfigInput): Storage;
}

/** Registers the hooks; call inside the backend's `describe`. */
export function useBackend(backend: Backend): Fixture {
  let shared: Storage | undefined;
  const perTest: Storage[] = [];

  beforeAll(() => {
    shared = backend.create();
  });
  afterEach(async () => {
    await Promise.all(perTest.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    try {
      await shared?.close();
    } finally {
      await backend.cleanup();
    }
  });

  return {
    backend,
    caps: backend.capabilities,
    storage() {
      if (!shared) throw new Error(`${backend.name}: storage() used outside a test`);
      return shared;
    },
    withConfig(overrides) {
      const storage = backend.create(overrides);
      perTest.push(storage);
      return storage;
    },
  };
}

/** The title suffix of a test that needs `capability`: `[needs capability subscribe]`. */
export function needs(capability: keyof Capabilities): string {
  return `[needs capability ${capability}]`;
}
