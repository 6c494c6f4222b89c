/**
 * `npm start`: every function of serverless.yml behind `serverless offline` on this machine,
 * with nothing else running, then a banner saying where it listens, the local admin token and
 * how to try it.
 *
 * Backend: `STORAGE_BACKEND` decides. Unset (or `postgresql` without `DATABASE_URL`), it is the
 * embedded one: PostgreSQL as PGlite persisted under the data directory, migrated here and
 * served on 127.0.0.1 to every function (local/embedded-postgres.ts says why over a socket).
 * `STORAGE_BACKEND=redis` uses `REDIS_URL`, `STORAGE_BACKEND=postgresql` with `DATABASE_URL`
 * that server (migrated beforehand with `npm run migrate:schema`). Those servers are checked before
 * anything is bundled (local/probe-backend.ts): one that does not answer stops the start with
 * the cause in one line. `memory` is refused: serverless-offline runs every function in its own
 * worker thread, so each would hold a store of its own (a token issued through `/tokens` would be
 * unknown to `/kv`).
 *
 * Environment:
 *   KUBENTLY_DATA_DIR     the data directory (default `.data/` in the repository): the embedded
 *                         database (`pglite/`), its lock, and the admin token (`admin-token`)
 *   KUBENTLY_ADMIN_TOKEN  use this admin token instead of the one kept in the data directory
 *   KUBENTLY_PG_PORT      port of the embedded PostgreSQL on 127.0.0.1 (default: a free one)
 *
 * Only the SHA-256 of the admin token reaches the functions (`BOOTSTRAP_TOKEN_HASH`). Arguments
 * go to `serverless offline` (`npm start -- --httpPort 4000 --websocketPort 4001 --lambdaPort
 * 4002`). Ctrl-C stops serverless, then closes the database (a second Ctrl-C: at once).
 *
 * For tools (test/support/servers/offline.ts): once `GET /health` answers, the banner starts with
 * `Kubently Storage is running` and has one line `  Admin token: <token>`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  existsSync,
  constants as fsConstants,
  mkdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { constants } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataDirLockedError, type EmbeddedPostgres, startEmbeddedPostgres } from './embedded-postgres.js';
import { probeBackends, redact } from './probe-backend.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const serverlessBin = fileURLToPath(new URL('../node_modules/.bin/serverless', import.meta.url));
const READY_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 15_000;

const args = process.argv.slice(2);
const httpPort = Number(optionValue(args, '--httpPort') ?? 3000);
const websocketPort = Number(optionValue(args, '--websocketPort') ?? 3001);
const lambdaPort = Number(optionValue(args, '--lambdaPort') ?? 3002);
const baseUrl = `http://localhost:${httpPort}`;
const wsUrl = `ws://localhost:${websocketPort}`;
const dataDir = resolve(process.env.KUBENTLY_DATA_DIR || join(root, '.data'));

const requestedBackend = process.env.STORAGE_BACKEND || '';
const embedded =
  requestedBackend === '' ||
  (requestedBackend === 'postgresql' &&
    (!process.env.DATABASE_URL || process.env.POSTGRES_DRIVER === 'pglite'));

if (requestedBackend === 'memory') {
  console.error(
    'STORAGE_BACKEND=memory is refused: npm start runs each function in its own worker, so each would keep a store of its own (a token issued through /tokens would be unknown to /kv); leave STORAGE_BACKEND unset for the embedded PostgreSQL, which needs no server.',
  );
  process.exit(1);
}

if (!existsSync(serverlessBin)) {
  console.error(`${serverlessBin} is missing: run \`npm ci\` first.`);
  process.exit(1);
}

let database: EmbeddedPostgres | undefined;
/** The embedded database while it starts (a signal then waits for it, to close it properly). */
let databaseStarting: Promise<EmbeddedPostgres> | undefined;
let child: ChildProcess | undefined;
let childExited = false;
let stopping: Promise<never> | undefined;

// Ctrl-C and `kill <pid>` stop everything in order; a second signal means "now".
let signalsReceived = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    signalsReceived += 1;
    if (signalsReceived > 1) signalChild('SIGKILL');
    void stop(128 + constants.signals[signal]);
  });
}
// Should this process end any other way, the detached child must not outlive it.
process.on('exit', () => signalChild('SIGTERM'));

const admin = adminToken();

// No AWS account is involved: handlers' AWS SDK clients (the WebSocket relay) talk to
// serverless-offline's local endpoints, but still sign their requests, so dummy credentials are
// supplied when none are set.
const { KUBENTLY_ADMIN_TOKEN: _token, ...inherited } = process.env;
const env: NodeJS.ProcessEnv = {
  ...inherited,
  AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID || 'local',
  AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY || 'local',
  AWS_REGION: process.env.AWS_REGION || 'us-east-1',
  WEBSOCKET_ENDPOINT: `http://localhost:${websocketPort}`,
  LAMBDA_ENDPOINT: `http://localhost:${lambdaPort}`,
  BOOTSTRAP_TOKEN_HASH: admin.hash,
  STORAGE_BACKEND: embedded ? 'postgresql' : requestedBackend,
};

if (embedded) {
  console.log(`Starting the embedded PostgreSQL (PGlite) in ${join(dataDir, 'pglite')} …`);
  try {
    databaseStarting = startEmbeddedPostgres({
      dataDir,
      port: Number(process.env.KUBENTLY_PG_PORT || 0),
      schema: process.env.POSTGRES_SCHEMA || undefined,
    });
    database = await databaseStarting;
  } catch (error) {
    if (error instanceof DataDirLockedError) {
      console.error(`\nCannot start: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
  const applied = database.migrations.applied.map((m) => m.file);
  console.log(
    `Embedded PostgreSQL on ${database.url} (schema version ${database.migrations.version}` +
      `${applied.length > 0 ? `; applied ${applied.join(', ')}` : ''}). Bundling the functions …`,
  );
  // Whatever DATABASE_URL or POSTGRES_DRIVER the shell has, the functions use this database.
  env.DATABASE_URL = database.url;
  env.POSTGRES_DRIVER = 'pg';
}

if (!embedded && stopping === undefined) {
  console.log(`Checking the ${requestedBackend} backend …`);
  const problem = await probeBackends(env, root);
  if (problem !== undefined) {
    console.error(problem);
    process.exit(1);
  }
}

if (stopping === undefined) {
  // Its own process group, so a signal reaches serverless and its esbuild helpers together (an
  // esbuild service whose parent exits under it dies with a Go deadlock dump).
  child = spawn(serverlessBin, ['offline', ...args], { cwd: root, env, stdio: 'inherit', detached: true });
  child.on('error', (error) => {
    console.error(`could not start serverless offline: ${error.message}`);
    void stop(1);
  });
  child.on('exit', (code, signal) => {
    childExited = true;
    void stop(code ?? 128 + (signal ? constants.signals[signal] : 1));
  });

  const health = await waitForHealth();
  if (health && stopping === undefined) printBanner(health);
}

/** Stops serverless (its whole group), then closes the database, then exits. */
function stop(code: number): Promise<never> {
  stopping ??= (async () => {
    if (child !== undefined && !childExited) {
      const exited = new Promise((done) => child?.once('exit', done));
      signalChild('SIGTERM');
      const timer = setTimeout(() => signalChild('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    try {
      const db = database ?? (await databaseStarting?.catch(() => undefined));
      await db?.close();
    } catch (error) {
      console.error(`closing the embedded PostgreSQL failed: ${(error as Error).message}`);
      code ||= 1;
    }
    process.exit(code);
  })();
  return stopping;
}

function signalChild(signal: NodeJS.Signals): void {
  if (childExited || child?.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

/**
 * The local admin token: `KUBENTLY_ADMIN_TOKEN`, else the one kept in `<dataDir>/admin-token`
 * (made on first start, mode 0600). A `BOOTSTRAP_TOKEN_HASH` from the shell is kept as it is:
 * its token is the caller's.
 */
function adminToken(): { token: string | undefined; hash: string; file?: string } {
  const given = process.env.KUBENTLY_ADMIN_TOKEN;
  if (given) return { token: given, hash: sha256(given) };
  if (process.env.BOOTSTRAP_TOKEN_HASH) return { token: undefined, hash: process.env.BOOTSTRAP_TOKEN_HASH };
  const file = join(dataDir, 'admin-token');
  mkdirSync(dataDir, { recursive: true });
  let token = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  if (token === '') {
    token = `kbs_${randomBytes(32).toString('base64url')}`;
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
  }
  chmodSync(file, 0o600);
  return { token, hash: sha256(token), file };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

interface HealthAnswer {
  status: number;
  body: { status?: string; backend?: string; error?: { message?: string } };
}

async function waitForHealth(): Promise<HealthAnswer | undefined> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!childExited && stopping === undefined && Date.now() < deadline) {
    try {
      const response = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(5_000) });
      const body = JSON.parse(await response.text()) as HealthAnswer['body'];
      return { status: response.status, body };
    } catch {
      // Not listening yet, or not our handler answering yet.
    }
    await new Promise((done) => setTimeout(done, 500));
  }
  if (!childExited && stopping === undefined) {
    console.error(
      `\n${baseUrl}/health did not answer within ${READY_TIMEOUT_MS / 1000} s; still waiting on it.`,
    );
  }
  return undefined;
}

function printBanner({ status, body }: HealthAnswer): void {
  const backend = body.backend ?? env.STORAGE_BACKEND;
  const state =
    status === 200
      ? body.status
      : `${body.status ?? 'down'} (HTTP ${status}${body.error?.message ? `: ${body.error.message}` : ''})`;
  const where =
    database !== undefined
      ? ` — embedded PGlite in ${join(dataDir, 'pglite')}, served on ${database.url}`
      : backend === 'memory'
        ? ' — in-process: data is gone when this stops'
        : backend === 'redis'
          ? ` — ${redact(env.REDIS_URL || 'redis://127.0.0.1:6379')}`
          : ` — ${redact(env.DATABASE_URL ?? '')}`;
  const token = admin.token ?? '<the token whose SHA-256 is BOOTSTRAP_TOKEN_HASH>';
  const tokenNote = admin.file ? `   (kept in ${admin.file})` : '';
  console.log(
    [
      '',
      'Kubently Storage is running (serverless offline)',
      `  HTTP:       ${baseUrl}   (health: ${baseUrl}/health → ${state})`,
      `  WebSocket:  ${wsUrl}`,
      `  Lambda:     http://localhost:${lambdaPort}`,
      `  Backend:    ${backend}${where}`,
      `  Admin token: ${token}${tokenNote}`,
      '  Try:',
      `    TOKEN=${admin.token ?? '<your admin token>'}`,
      `    curl -H "Authorization: Bearer $TOKEN" ${baseUrl}/kv/hello -X PUT -d '{"value":"world"}' -H 'content-type: application/json'`,
      `    curl -H "Authorization: Bearer $TOKEN" ${baseUrl}/kv/hello`,
      `    ${webSocketTry()}`,
      `    curl -H "Authorization: Bearer $TOKEN" ${baseUrl}/channels/demo/messages -d '{"message":"hi"}' -H 'content-type: application/json'`,
      '  Real servers instead:',
      '    STORAGE_BACKEND=redis REDIS_URL=redis://127.0.0.1:6379 npm start',
      '    STORAGE_BACKEND=postgresql DATABASE_URL=postgres://… npm start   (after npm run migrate:schema)',
      '  Stop with Ctrl-C.',
      '',
    ].join('\n'),
  );
}

/**
 * A line that opens a WebSocket and subscribes to `demo`, with a tool that is there: wscat when
 * it is on the PATH, else node with the `ws` package this project ships (run from this directory).
 */
function webSocketTry(): string {
  const url = `"${wsUrl}?token=$TOKEN"`;
  if (onPath('wscat')) return `wscat -c ${url}     then send {"action":"subscribe","channel":"demo"}`;
  // Subscribes to `demo` and prints every frame; the URL is its argument. No `!` or `$`: it sits in double quotes.
  const script =
    "const w=new (require('ws'))(process.argv[1]);w.on('open',()=>w.send(JSON.stringify({action:'subscribe',channel:'demo'})));w.on('message',m=>console.log(String(m)))";
  return `node -e "${script}" ${url}     (from ${root})`;
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(join(dir, command), fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function optionValue(argv: string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === name) return argv[i + 1];
    if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
  }
  return undefined;
}
