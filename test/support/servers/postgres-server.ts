/**
 * A private PostgreSQL cluster for fault tests: `initdb` into a temporary directory, started
 * with `pg_ctl` on a free loopback port (trust authentication, its socket in that directory),
 * restarted in `immediate` mode (no checkpoint: recovery replays the WAL, as after a crash).
 * As root, the server runs as the `postgres` user (it refuses root). Never the shared server.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './redis-server.js';

const run = promisify(execFile);

/** The directory of `initdb` and `pg_ctl`, or undefined when PostgreSQL's server is not installed. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  try {
    execFileSync('initdb', ['--version'], { stdio: 'ignore' });
    return '';
  } catch {
    return undefined;
  }
}

/** Why no private PostgreSQL can be had here (undefined: it can). Throws under CI. */
export function missingPostgresServer(): string | undefined {
  if (postgresBinDir() !== undefined) return undefined;
  const reason = 'PostgreSQL server binaries (initdb, pg_ctl) not installed (apt-get install postgresql)';
  if (process.env.CI) throw new Error(`fault tests need ${reason}`);
  return reason;
}

export class PrivatePostgres {
  readonly url: string;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly bin: string,
  ) {
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }

  static async start(): Promise<PrivatePostgres> {
    const bin = postgresBinDir();
    if (bin === undefined) throw new Error('initdb is not installed');
    const dir = mkdtempSync(join(tmpdir(), 'kst-pg-'));
    const asRoot = userInfo().uid === 0;
    if (asRoot) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
      chownSync(dir, uid, gid);
    }
    const server = new PrivatePostgres(await freePort(), dir, bin);
    await server.pg('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
    await server.ctl('start');
    return server;
  }

  /** Stops the server as a crash would (no shutdown checkpoint) and starts it again; `onDown` runs once it is down. */
  async restart(downMs = 0, onDown?: () => void): Promise<void> {
    await this.ctl('stop', ['-m', 'immediate']);
    onDown?.();
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.ctl('start');
  }

  async stop(): Promise<void> {
    await this.ctl('stop', ['-m', 'immediate']).catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }

  private ctl(action: 'start' | 'stop', extra: string[] = []): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c max_connections=200`;
    return this.pg('pg_ctl', [
      '-D',
      join(this.dir, 'data'),
      '-l',
      join(this.dir, 'server.log'),
      '-w',
      ...(action === 'start' ? ['-o', options] : []),
      ...extra,
      action,
    ]);
  }

  private async pg(program: string, args: string[]): Promise<void> {
    const path = this.bin ? join(this.bin, program) : program;
    const [file, argv] =
      userInfo().uid === 0 ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
    await run(file, argv, { timeout: 120_000 });
  }
}
