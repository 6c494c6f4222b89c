/** Shared by the client test files: first calls of each function retried until they answer. */
import { vi } from 'vitest';
import type { Offline } from '../support/servers/offline.js';

/** Ceiling for a cold function to answer on a shared, noisy machine; never an expectation. */
const WARM_UP_MS = 120_000;

/**
 * Each function's first invocation loads its bundle in a fresh worker; on a loaded machine that
 * can outlast offline's Lambda timeout (a 502/504). Every function the tests use is called once
 * first, retried until it answers, so the tests meet warm functions. Nothing is asserted here.
 */
export async function warmUp(offline: Offline): Promise<void> {
  const calls: [string, string, unknown?][] = [
    ['GET', '/kv/warm-up'],
    ['GET', '/sessions?clusterId=warm-up'],
    ['GET', '/queues/warm-up'],
    ['GET', '/channels/warm-up/messages'],
    ['GET', '/tokens?limit=1'],
  ];
  await Promise.all(
    calls.map(async ([method, path]) => {
      await vi.waitFor(
        async () => {
          const response = await fetch(`${offline.baseUrl}${path}`, {
            method,
            headers: { authorization: `Bearer ${offline.adminToken}` },
          }).catch(() => undefined);
          await response?.text();
          if (!response || response.status >= 500) {
            throw new Error(`${method} ${path} did not answer: ${response?.status}`);
          }
        },
        { timeout: WARM_UP_MS, interval: 500 },
      );
    }),
  );
}
