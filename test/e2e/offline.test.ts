/**
 * End to end over `serverless offline`: the real bundle (serverless-esbuild), the real HTTP API
 * emulation, the memory backend. Runs on its own free ports and build folder so it does not
 * clash with a running `npm start`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const serverlessBin = fileURLToPath(new URL('../../node_modules/.bin/serverless', import.meta.url));
const workFolder = `.esbuild-e2e-${process.pid}`;
// Bundling and starting take 10–20 s on a small shared machine; these are ceilings, not expectations.
const STARTUP_TIMEOUT_MS = 120_000;

let offline: ChildProcess | undefined;
let output = '';
let baseUrl = '';

beforeAll(async () => {
  const [httpPort, lambdaPort, websocketPort] = await freePorts(3);
  baseUrl = `http://127.0.0.1:${httpPort}`;
  offline = spawn(
    serverlessBin,
    [
      'offline',
      '--httpPort',
      `${httpPort}`,
      '--lambdaPort',
      `${lambdaPort}`,
      '--websocketPort',
      `${websocketPort}`,
    ],
    {
      cwd: root,
      // Its own process group, so afterAll can end serverless and everything it started.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: 'e2e',
        AWS_SECRET_ACCESS_KEY: 'e2e',
        AWS_REGION: 'us-east-1',
        STORAGE_BACKEND: 'memory',
        ESBUILD_WORK_FOLDER: workFolder,
      },
    },
  );
  offline.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  offline.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  await waitForHealth(offline);
}, STARTUP_TIMEOUT_MS + 10_000);

afterAll(async () => {
  if (offline?.pid !== undefined && offline.exitCode === null && offline.signalCode === null) {
    const exited = new Promise((resolve) => offline?.once('exit', resolve));
    killGroup(offline.pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(offline!.pid!, 'SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(fileURLToPath(new URL(`../../${workFolder}`, import.meta.url)), { recursive: true, force: true });
}, 30_000);

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

async function waitForHealth(child: ChildProcess): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`serverless offline exited (${child.exitCode ?? child.signalCode}):\n${output}`);
    }
    try {
      const response = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(10_000) });
      // serverless-offline's own 404 page answers before the routes exist.
      if (response.headers.get('content-type')?.startsWith('application/json')) return;
      lastError = new Error(`HTTP ${response.status}`);
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${baseUrl}/health did not answer (${String(lastError)}); serverless output:\n${output}`);
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Ports the OS says are free right now (bound to port 0, then released). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
