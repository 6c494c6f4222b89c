/**
 * A private PostgreSQL cluster that a test may stop and start at will (never the shared server
 * on 5432): `initdb` into a temporary directory, `pg_ctl` on a free loopback port, its socket
 * in that directory, trust authentication. The binaries come from `/usr/lib/postgresql/<newest>/bin`
 * (Debian's layout) or `PG_BINDIR`. `initdb` and `postgres` refuse to run as root: as root,
 * every command runs as the `postgres` user (`runuser`).
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './pgbouncer.js';

const run = promisify(execFile);

export interface PostgresCluster {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  url: string;
  port: number;
  /** `pg_ctl stop -m <mode>`: `fast` rolls back and disconnects clients, `immediate` is a crash (recovery from WAL on start). */
  stop(mode: 'fast' | 'immediate'): Promise<void>;
  /** `pg_ctl start`, answering once the server accepts connections. */
  start(): Promise<void>;
  /** Stops the server (immediately) and removes its directory. */
  destroy(): Promise<void>;
}

/** The directory holding `initdb` and `pg_ctl`, or undefined. */
export function postgresBinDir(): string | undefined {
  const candidates = [process.env.PG_BINDIR];
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => join(root, v, 'bin')));
  }
  return candidates.find(
    (dir): dir is string =>
      dir !== undefined && dir !== '' && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')),
  );
}

/** Why no private cluster can be started here, or undefined when one can. */
export function postgresClusterUnavailable(): string | undefined {
  return postgresBinDir() ? undefined : 'no initdb/pg_ctl (install postgresql, or set PG_BINDIR)';
}

export async function startPostgresCluster(): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error(postgresClusterUnavailable());
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'kst-postgres-'));
  const data = join(dir, 'data');
  const log = join(dir, 'postgres.log');
  if (asRoot) {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    chownSync(dir, Number(uid.stdout.trim()), Number(gid.stdout.trim()));
  }
  const pg = (tool: string, args: string[]) =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args], { timeout: 60_000 })
      : run(join(bin, tool), args, { timeout: 60_000 });
  const port = await freePort();
  const logTail = () => {
    try {
      return readFileSync(log, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '(no log)';
    }
  };

  // --no-sync only makes initdb quicker; the server itself runs with fsync on, so a crash
  // (`stop('immediate')`) loses nothing that was committed.
  await pg('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    '-c fsync=on',
    '-c synchronous_commit=on',
    '-c max_connections=100',
  ].join(' ');
  const start = async () => {
    try {
      await pg('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', options, 'start']);
    } catch (error) {
      throw new Error(`pg_ctl start failed: ${String(error)}\n${logTail()}`);
    }
  };
  const stop = async (mode: 'fast' | 'immediate') => {
    await pg('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
  };
  await start();
  let destroyed = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop,
    start,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await stop('immediate').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
