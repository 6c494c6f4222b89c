/**
 * End-to-end harness: `npm start` (local/start.ts) on free ports, with a temporary data
 * directory and its own esbuild work folder, so it never clashes with a running `npm start` or
 * another test file.
 *
 *   const offline = await startOffline();                      // embedded PostgreSQL (PGlite)
 *   const redis = await startOffline({ env: { STORAGE_BACKEND: 'redis', REDIS_URL } });
 *   await fetch(`${offline.baseUrl}/kv/a`, { headers: { authorization: `Bearer ${offline.adminToken}` } });
 *   await offline.stop();                                       // in afterAll
 *
 * `startOffline` resolves once the banner is printed (`GET /health` answered); it rejects with
 * an `OfflineStartError` carrying the process output when the process exits first (a refused
 * start: a locked data directory, a server that does not answer) or nothing answers within
 * `timeoutMs`.
 * `stop()` ends the process group (SIGTERM, then SIGKILL after 30 s), waits for it, and removes
 * the temporary folders (a `dataDir` passed in is kept).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const tsxBin = join(root, 'node_modules', '.bin', 'tsx');
/** Bundling and starting take 10–30 s on a small shared machine: a ceiling, not an expectation. */
const STARTUP_TIMEOUT_MS = 150_000;
const STOP_TIMEOUT_MS = 30_000;

export interface OfflineOptions {
  /** Added to (and overriding) the test process's environment, e.g. `{ STORAGE_BACKEND: 'redis', REDIS_URL }`. */
  env?: Record<string, string>;
  /** The data directory (`KUBENTLY_DATA_DIR`); default a new temporary one, removed by `stop()`. */
  dataDir?: string;
  /** Ceiling for bundling and starting (default 150 s). */
  timeoutMs?: number;
}

export interface Offline {
  /** `http://127.0.0.1:<httpPort>` */
  baseUrl: string;
  /** `ws://127.0.0.1:<websocketPort>` */
  wsUrl: string;
  /** `http://127.0.0.1:<lambdaPort>` (serverless-offline's Lambda invoke endpoint) */
  lambdaEndpoint: string;
  /** The admin token the banner printed (undefined only when the env set `BOOTSTRAP_TOKEN_HASH`). */
  adminToken: string;
  dataDir: string;
  /** The process id of `local/start.ts`, which leads the process group of everything it started. */
  pid: number;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Ends the process group, waits for it, removes temporary folders. Safe to call twice. */
  stop(): Promise<void>;
}

/** Thrown when the process exits before it is ready (e.g. a locked data directory); carries the output. */
export class OfflineStartError extends Error {
  constructor(
    message: string,
    readonly output: string,
    readonly exitCode: number | null,
  ) {
    super(`${message}\n--- output ---\n${output}`);
    this.name = 'OfflineStartError';
  }
}

export async function startOffline(options: OfflineOptions = {}): Promise<Offline> {
  const [httpPort, websocketPort, lambdaPort] = await freePorts(3);
  const scratch = mkdtempSync(join(tmpdir(), 'kubently-offline-'));
  const dataDir = options.dataDir ?? join(scratch, 'data');
  // Relative to the repository (serverless-esbuild resolves it there); removed by stop().
  const workFolder = `.esbuild-e2e-${process.pid}-${httpPort}`;

  let output = '';
  const child = spawn(
    tsxBin,
    [
      'local/start.ts',
      '--httpPort',
      `${httpPort}`,
      '--websocketPort',
      `${websocketPort}`,
      '--lambdaPort',
      `${lambdaPort}`,
    ],
    {
      cwd: root,
      // Its own process group, so stop() can end it and everything it started.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: 'e2e',
        AWS_SECRET_ACCESS_KEY: 'e2e',
        AWS_REGION: 'us-east-1',
        KUBENTLY_DATA_DIR: dataDir,
        ESBUILD_WORK_FOLDER: workFolder,
        ...options.env,
      },
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      if (isRunning(child)) {
        killGroup(child, 'SIGTERM');
        const timer = setTimeout(() => killGroup(child, 'SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      rmSync(join(root, workFolder), { recursive: true, force: true });
      rmSync(scratch, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    const adminToken = await waitForBanner(child, () => output, options.timeoutMs ?? STARTUP_TIMEOUT_MS);
    return {
      baseUrl: `http://127.0.0.1:${httpPort}`,
      wsUrl: `ws://127.0.0.1:${websocketPort}`,
      lambdaEndpoint: `http://127.0.0.1:${lambdaPort}`,
      adminToken,
      dataDir,
      pid: child.pid!,
      output: () => output,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Waits for start.ts's banner (printed once `GET /health` answered) and reads the admin token from it. */
async function waitForBanner(child: ChildProcess, output: () => string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const text = output();
    const banner = text.indexOf('Kubently Storage is running');
    if (banner >= 0) {
      const token = /^ {2}Admin token: (\S+)/m.exec(text.slice(banner));
      if (token) return token[1]!;
    }
    if (!isRunning(child)) {
      throw new OfflineStartError(
        `local/start.ts exited (${child.exitCode ?? child.signalCode}) before it was ready`,
        text,
        child.exitCode,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new OfflineStartError(`local/start.ts was not ready within ${timeoutMs / 1000} s`, output(), null);
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** Ports the OS says are free right now (bound to port 0, then released). */
export async function freePorts(count: number): Promise<number[]> {
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
