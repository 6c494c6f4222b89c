/**
 * Private Redis servers for fault tests: each on a free loopback port, in a temporary directory
 * of its own, started from the machine's `redis-server` (or `redis-sentinel`) as a child process
 * that a test may kill (SIGKILL), freeze (SIGSTOP) and start again on the same port and
 * directory. Never the shared server on 6379.
 *
 * A binary that is missing is a reason to skip (`missingRedisBinaries`); under CI it is an error.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export type RedisBinary = 'redis-server' | 'redis-sentinel';

/** The binaries of `needed` not installed here, as a sentence (undefined when all are). Throws under CI. */
export function missingRedisBinaries(needed: RedisBinary[] = ['redis-server']): string | undefined {
  const missing = needed.filter((binary) => {
    try {
      execFileSync(binary, ['--version'], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return undefined;
  const reason = `not installed: ${missing.join(', ')} (apt-get install ${missing.join(' ')})`;
  if (process.env.CI) throw new Error(`Redis fault tests need ${reason}`);
  return reason;
}

/** A TCP port nothing listens on right now (the kernel's choice). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface PrivateRedisOptions {
  /** Directives after the defaults (`--save ""`, `--appendonly no`), e.g. `['--appendonly', 'yes']`. */
  args?: string[];
  /** Start a Sentinel instead of a server; `config` is its configuration file's text. */
  sentinelConfig?: string;
  /** A directory shared with other servers (their files must not clash); default: a new one. */
  dir?: string;
}

/** One private server (or Sentinel) process. */
export class PrivateRedis {
  readonly url: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly binary: RedisBinary,
    private readonly args: string[],
    private readonly ownsDir: boolean,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  static async start(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const port = await freePort();
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'kst-redis-'));
    const common = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir];
    let binary: RedisBinary = 'redis-server';
    let args: string[];
    if (options.sentinelConfig !== undefined) {
      binary = 'redis-sentinel';
      const file = join(dir, `sentinel-${port}.conf`);
      writeFileSync(file, options.sentinelConfig);
      args = [file, ...common, '--logfile', join(dir, `sentinel-${port}.log`)];
    } else {
      args = [
        ...common,
        '--save',
        '',
        '--appendonly',
        'no',
        '--appendfilename',
        `appendonly-${port}.aof`,
        '--appenddirname',
        `aof-${port}`,
        '--dbfilename',
        `dump-${port}.rdb`,
        '--logfile',
        join(dir, `redis-${port}.log`),
        ...(options.args ?? []),
      ];
    }
    const server = new PrivateRedis(port, dir, binary, args, options.dir === undefined);
    await server.launch();
    return server;
  }

  /** The process id while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts the process again (same port, directory and directives) and waits until it answers PING. */
  async launch(): Promise<void> {
    if (this.child) return;
    const child = spawn(this.binary, this.args, { stdio: 'ignore' });
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        if (this.child === child) this.child = undefined;
        resolve();
      });
    });
    await this.waitUntilAnswering();
  }

  /** Sends `signal` and, unless it only freezes or thaws the process, waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    if (signal !== 'SIGSTOP' && signal !== 'SIGCONT') await this.exited;
  }

  /** kill -9, then start again at once on the same port and directory. */
  async restart(): Promise<void> {
    await this.kill('SIGKILL');
    await this.launch();
  }

  /** A plain client (no retries) for checks and setup; the caller disconnects it. */
  admin(): Redis {
    const client = new Redis(this.port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: false });
    client.on('error', () => {});
    return client;
  }

  async stop(): Promise<void> {
    await this.kill('SIGKILL');
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  private async waitUntilAnswering(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const client = new Redis(this.port, '127.0.0.1', {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        connectTimeout: 1000,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        // LOADING (an AOF being read) answers PING with an error: wait until it is done.
        if ((await client.ping()) === 'PONG') return;
      } catch {
        // not up yet
      } finally {
        client.disconnect();
      }
      if (!this.child) throw new Error(`${this.binary} on port ${this.port} exited (see ${this.dir})`);
      if (Date.now() > deadline)
        throw new Error(`${this.binary} on port ${this.port} did not answer in time`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
