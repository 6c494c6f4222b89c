/**
 * A PRIVATE redis-server for fault tests (never the shared one on 6379): a free port, AOF
 * fsynced on every write, its own directory; the tests stop, pause and restart it at will.
 * Plus a hybrid Storage over it and the local PostgreSQL, with its own schema and an
 * `application_name` so a test can kill exactly its own connections.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { expect, vi } from 'vitest';
import { resolveConfig } from '../../lib/config/index.js';
import { type CreateStorageOptions, createStorage } from '../../lib/storage/index.js';
import { createSql, quoteIdent, type Sql } from '../../lib/storage/postgresql/sql.js';
import type { Storage } from '../../lib/storage/types.js';
import { testDatabaseUrl } from '../support/backends.js';

const run = promisify(execFile);

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export class PrivateRedis {
  readonly dir = mkdtempSync(join(tmpdir(), 'kst-hybrid-redis-'));
  private process: ChildProcess | undefined;
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.start();
    return redis;
  }

  async start(): Promise<void> {
    this.process = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
        '--enable-debug-command',
        'local',
      ],
      { stdio: 'ignore' },
    );
    await vi.waitFor(
      async () =>
        expect((await this.cli('ping').catch(() => '')).trim(), `redis-server on ${this.port}`).toBe('PONG'),
      { timeout: 5000, interval: 50 },
    );
  }

  cli(...args: string[]): Promise<string> {
    return run('redis-cli', ['-p', String(this.port), ...args], { timeout: 30_000 }).then((r) => r.stdout);
  }

  /** `SHUTDOWN NOSAVE` (the AOF already holds every acknowledged write) and waits for the process to end. */
  async shutdown(): Promise<void> {
    const exited = new Promise<void>((resolve) => {
      if (!this.process || this.process.exitCode !== null) resolve();
      else this.process.once('exit', () => resolve());
    });
    await this.cli('shutdown', 'nosave').catch(() => {});
    await exited;
    this.process = undefined;
  }

  async stop(): Promise<void> {
    if (this.process) await this.shutdown();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface HybridHandle {
  storage: Storage;
  applicationName: string;
  schema: string;
  keyPrefix: string;
  /** Closes the storage, drops its schema and deletes its Redis keys. */
  dispose(): Promise<void>;
}

/**
 * A hybrid Storage over `redisUrl` and the local PostgreSQL (own schema, own application_name);
 * `reuse` shares another handle's schema and key prefix (a second container), `proxy` routes
 * PostgreSQL through a PgProxy.
 */
export function hybridStorage(
  redisUrl: string,
  options: CreateStorageOptions['hybrid'] = {},
  via: { proxy?: PgProxy; reuse?: HybridHandle } = {},
): HybridHandle {
  const id = randomBytes(4).toString('hex');
  const schema = via.reuse?.schema ?? `kst_hf_${id}`;
  const applicationName = via.reuse?.applicationName ?? `kst-hybrid-test-${id}`;
  const url = new URL(testDatabaseUrl());
  url.searchParams.set('application_name', applicationName);
  if (via.proxy) url.host = `127.0.0.1:${via.proxy.port}`;
  const keyPrefix = via.reuse?.keyPrefix ?? `kst:hf:${id}:`;
  const storage = createStorage(
    {
      backend: 'hybrid',
      keyPrefix,
      redis: { url: redisUrl, connectTimeout: 1, maxRetriesPerRequest: 1 },
      postgresql: { driver: 'pg', url: url.toString(), schema, migrate: true, connectTimeout: 3 },
    },
    { hybrid: options },
  );
  return {
    storage,
    applicationName,
    schema,
    keyPrefix,
    async dispose() {
      await storage.close().catch(() => {}); // a test may have closed it already
      await withAdmin((sql) => sql.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`));
      await deleteRedisKeys(redisUrl, keyPrefix);
    },
  };
}

/** Deletes the keys under `prefix` (the prefix is hex: no glob escaping needed). */
async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
  } catch {
    // A stopped private server: its keys went with its directory.
  } finally {
    client.disconnect();
  }
}

export async function withAdmin<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = await createSql(
    resolveConfig({ postgresql: { driver: 'pg', url: testDatabaseUrl(), listen: false } }).postgresql,
  );
  try {
    return await fn(sql);
  } finally {
    await sql.close();
  }
}

/** Terminates only the connections carrying this test's application_name. */
export async function killConnections(applicationName: string): Promise<number> {
  return withAdmin(async (sql) => {
    const result = await sql.query(
      'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1',
      [applicationName],
    );
    return Number((result[0] as { n: number }).n);
  });
}

/**
 * Whether the local servers the hybrid tests need answer; the reason when not (the tests are
 * then skipped, loudly). Under `CI=true` a missing server fails the run instead, as the
 * conformance suite does.
 */
export async function hybridUnavailable(): Promise<string | undefined> {
  const reason = await whyUnavailable();
  if (reason !== undefined) {
    if (process.env.CI) throw new Error(`hybrid tests need Redis and PostgreSQL under CI: ${reason}`);
    console.warn(`\n⚠ hybrid tests SKIPPED: ${reason}\n`);
  }
  return reason;
}

async function whyUnavailable(): Promise<string | undefined> {
  try {
    await run('redis-server', ['--version']);
  } catch {
    return 'redis-server is not installed';
  }
  try {
    await withAdmin((sql) => sql.query('SELECT 1'));
  } catch (error) {
    return `no PostgreSQL at ${testDatabaseUrl()} (${error instanceof Error ? error.message : String(error)})`;
  }
  return undefined;
}

/**
 * A TCP proxy to the test PostgreSQL that can be switched down (drops and refuses connections)
 * or made slow to connect (a compute waking from scale-to-zero).
 */
export class PgProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  down = false;
  port = 0;
  /** ms before a new connection is forwarded. */
  connectDelayMs = 0;

  static async start(): Promise<PgProxy> {
    const proxy = new PgProxy();
    const target = new URL(testDatabaseUrl());
    const host = target.hostname || '127.0.0.1';
    const port = Number(target.port || 5432);
    proxy.server = createServer((client) => {
      if (proxy.down) {
        client.destroy();
        return;
      }
      const upstream = new Socket();
      client.pause();
      const kill = () => {
        client.destroy();
        upstream.destroy();
        proxy.sockets.delete(client);
        proxy.sockets.delete(upstream);
      };
      client.on('error', kill).on('close', kill);
      upstream.on('error', kill).on('close', kill);
      proxy.sockets.add(client);
      proxy.sockets.add(upstream);
      setTimeout(() => {
        if (client.destroyed) return;
        upstream.connect(port, host);
        client.pipe(upstream).pipe(client);
        client.resume();
      }, proxy.connectDelayMs);
    });
    await new Promise<void>((resolve) => proxy.server!.listen(0, '127.0.0.1', () => resolve()));
    proxy.port = (proxy.server.address() as { port: number }).port;
    return proxy;
  }

  setDown(down: boolean): void {
    this.down = down;
    if (down) for (const socket of this.sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    this.setDown(true);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
