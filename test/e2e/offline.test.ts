/**
 * End to end over `serverless offline`: the real bundle (serverless-esbuild), the real HTTP API
 * emulation, the memory backend. Started by `npm start`'s script through the e2e harness
 * (test/support/offline.ts): its own free ports, data directory and build folder, so it does not
 * clash with a running `npm start`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Offline, startOffline } from '../support/offline.js';

// Bundling and starting take 10–30 s on a small shared machine; these are ceilings, not expectations.
const STARTUP_TIMEOUT_MS = 150_000;

let offline: Offline | undefined;
let baseUrl = '';

beforeAll(async () => {
  offline = await startOffline({ env: { STORAGE_BACKEND: 'memory' }, timeoutMs: STARTUP_TIMEOUT_MS });
  baseUrl = offline.baseUrl;
}, STARTUP_TIMEOUT_MS + 40_000);

afterAll(async () => {
  await offline?.stop();
}, 60_000);

describe('serverless offline', () => {
  it('GET /health answers 200 ok on the memory backend', async () => {
    const response = await fetch(`${baseUrl}/health`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({
      status: 'ok',
      backend: 'memory',
      checks: { memory: { ok: true, latencyMs: expect.any(Number) } },
    });
  });
});
