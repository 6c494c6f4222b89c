/**
 * A throwaway PgBouncer in front of a PostgreSQL, from the machine's `pgbouncer` binary
 * (`apt-get install pgbouncer`; `PGBOUNCER` names another binary): its configuration in a
 * temporary directory, a free loopback port, `auth_type = trust` with an auth file holding the
 * target's user (and password, which PgBouncer uses towards the server). Stopped by `stop()`.
 *
 * PgBouncer refuses to run as root: as root it drops to the `postgres` user (`-u`).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface PgBouncerOptions {
  /** The PostgreSQL behind it (`postgres://user[:password]@host:port/db`). */
  target: string;
  poolMode?: 'transaction' | 'session';
  /** Server connections per database and user (`default_pool_size`); also the database's cap. */
  poolSize?: number;
  maxClientConn?: number;
  /** Startup parameters PgBouncer drops instead of refusing the connection (e.g. `statement_timeout`). */
  ignoreStartupParameters?: string[];
}

export interface PgBouncer {
  /** The target's database through PgBouncer. */
  url: string;
  /** PgBouncer's admin console (`SHOW POOLS`, `SHOW SERVERS`). */
  adminUrl: string;
  port: number;
  /** The pool settings it runs with. */
  poolSize: number;
  /** Rows of `SHOW <what>` on the admin console. */
  show(what: 'POOLS' | 'SERVERS' | 'CLIENTS' | 'STATS'): Promise<Record<string, unknown>[]>;
  /** Runs a command on the admin console (e.g. `RECONNECT`: server connections closed once released). */
  admin(command: string): Promise<Record<string, unknown>[]>;
  /** Server connections open to the database now (`SHOW SERVERS`), and clients waiting for one (`SHOW POOLS`). */
  serverUse(): Promise<{ servers: number; waiting: number }>;
  /** Stops PgBouncer (dropping its connections) and removes its directory. */
  stop(): Promise<void>;
}

/** The binary to run, or undefined when none is installed. */
export function pgbouncerBinary(): string | undefined {
  const candidates = [
    process.env.PGBOUNCER,
    '/usr/sbin/pgbouncer',
    '/usr/bin/pgbouncer',
    '/usr/local/bin/pgbouncer',
  ];
  return candidates.find((path): path is string => path !== undefined && path !== '' && existsSync(path));
}

/** Why no PgBouncer can be started here, or undefined when one can. */
export function pgbouncerUnavailable(): string | undefined {
  return pgbouncerBinary()
    ? undefined
    : 'pgbouncer is not installed (apt-get install pgbouncer, or set PGBOUNCER)';
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/** uid and gid of `user`, for files a process running as that user must write. */
async function idsOf(user: string): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', user]), run('id', ['-g', user])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

const quoted = (value: string) => `"${value.replaceAll('"', '""')}"`;

export async function startPgBouncer(options: PgBouncerOptions): Promise<PgBouncer> {
  const binary = pgbouncerBinary();
  if (binary === undefined) throw new Error(pgbouncerUnavailable());
  const target = new URL(options.target);
  const user = decodeURIComponent(target.username || 'postgres');
  const password = decodeURIComponent(target.password);
  const database = decodeURIComponent(target.pathname.slice(1)) || user;
  const poolSize = options.poolSize ?? 20;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'kst-pgbouncer-'));
  const asRoot = process.getuid?.() === 0;
  const serverParts = [
    `host=${target.hostname}`,
    `port=${target.port || 5432}`,
    `dbname=${database}`,
    `pool_size=${poolSize}`,
    `max_db_connections=${poolSize}`,
  ];
  const ini = [
    '[databases]',
    `${database} = ${serverParts.join(' ')}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${join(dir, 'users.txt')}`,
    `admin_users = ${user}`,
    `pool_mode = ${options.poolMode ?? 'transaction'}`,
    `default_pool_size = ${poolSize}`,
    'reserve_pool_size = 0',
    `max_client_conn = ${options.maxClientConn ?? 1000}`,
    ...(options.ignoreStartupParameters?.length
      ? [`ignore_startup_parameters = ${options.ignoreStartupParameters.join(',')}`]
      : []),
    `logfile = ${join(dir, 'pgbouncer.log')}`,
    'log_connections = 0',
    'log_disconnections = 0',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'pgbouncer.ini'), ini);
  writeFileSync(join(dir, 'users.txt'), `${quoted(user)} ${quoted(password)}\n`);
  if (asRoot) {
    const { uid, gid } = await idsOf('postgres');
    for (const name of ['', 'pgbouncer.ini', 'users.txt']) chownSync(join(dir, name), uid, gid);
  }
  const child: ChildProcess = spawn(
    binary,
    [...(asRoot ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')],
    {
      stdio: 'ignore',
    },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `postgres://${encodeURIComponent(user)}${password ? `:${encodeURIComponent(password)}` : ''}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  const adminUrl = `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/pgbouncer`;

  const admin = async (command: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    client.on('error', () => {});
    await client.connect();
    try {
      // Without parameters node-postgres uses the simple protocol, the only one the console speaks.
      return (await client.query(command)).rows as Record<string, unknown>[];
    } finally {
      await client.end().catch(() => {});
    }
  };

  const log = () => {
    try {
      return readFileSync(join(dir, 'pgbouncer.log'), 'utf8').split('\n').slice(-10).join('\n');
    } catch {
      return '(no log)';
    }
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited with ${child.exitCode}:\n${log()}`);
    try {
      await admin('SHOW VERSION');
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`pgbouncer did not answer on port ${port}: ${String(error)}\n${log()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  let stopping: Promise<void> | undefined;
  return {
    url,
    adminUrl,
    port,
    poolSize,
    show: (what) => admin(`SHOW ${what}`),
    admin,
    async serverUse() {
      const [servers, pools] = [await admin('SHOW SERVERS'), await admin('SHOW POOLS')];
      const ours = (row: Record<string, unknown>) => row.database === database;
      return {
        servers: servers.filter(ours).length,
        waiting: pools.filter(ours).reduce((sum, row) => sum + Number(row.cl_waiting ?? 0), 0),
      };
    },
    stop() {
      stopping ??= (async () => {
        // SIGTERM: immediate shutdown (SIGINT would wait for clients to finish).
        if (child.exitCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
