/**
 * `npm start`: every function of serverless.yml behind `serverless offline` on this machine,
 * with nothing else running (the memory backend by default), then a short banner saying where
 * it listens and how to point it at real servers.
 *
 * Extra arguments go to `serverless offline` (`npm start -- --httpPort 4000`).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const serverlessBin = fileURLToPath(new URL('../node_modules/.bin/serverless', import.meta.url));
const READY_TIMEOUT_MS = 120_000;

const args = process.argv.slice(2);
const httpPort = Number(optionValue(args, '--httpPort') ?? 3000);
const baseUrl = `http://localhost:${httpPort}`;

// No AWS account is involved: handlers' AWS SDK clients (the WebSocket fan-out, later) talk to
// serverless-offline's local endpoints, but still sign their requests, so dummy credentials are
// supplied when none are set.
const env: NodeJS.ProcessEnv = {
  ...process.env,
  AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID || 'local',
  AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY || 'local',
  AWS_REGION: process.env.AWS_REGION || 'us-east-1',
  STORAGE_BACKEND: process.env.STORAGE_BACKEND || 'memory',
};

if (!existsSync(serverlessBin)) {
  console.error(`${serverlessBin} is missing: run \`npm ci\` first.`);
  process.exit(1);
}

// Its own process group, so a signal reaches serverless and its esbuild helpers together (an
// esbuild service whose parent exits under it dies with a Go deadlock dump).
const child = spawn(serverlessBin, ['offline', ...args], {
  cwd: root,
  env,
  stdio: 'inherit',
  detached: true,
});
let childExited = false;

child.on('error', (error) => {
  console.error(`could not start serverless offline: ${error.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  childExited = true;
  process.exit(code ?? 128 + (signal ? constants.signals[signal] : 1));
});

// Ctrl-C and `kill <pid>` are passed on to the child's group; a second signal means "now".
let signalsReceived = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    signalsReceived += 1;
    signalChild(signalsReceived > 1 ? 'SIGKILL' : signal);
  });
}

// Should this process end any other way, the detached child must not outlive it.
process.on('exit', () => signalChild('SIGTERM'));

function signalChild(signal: NodeJS.Signals): void {
  if (childExited || child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

const health = await waitForHealth();
if (health) printBanner(health);

interface HealthAnswer {
  status: number;
  body: { status?: string; backend?: string; error?: { message?: string } };
}

async function waitForHealth(): Promise<HealthAnswer | undefined> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!childExited && Date.now() < deadline) {
    try {
      const response = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(5_000) });
      const body = JSON.parse(await response.text()) as HealthAnswer['body'];
      return { status: response.status, body };
    } catch {
      // Not listening yet, or not our handler answering yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  if (!childExited) {
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
  const note = backend === 'memory' ? ' — in-process: data is gone when this stops' : '';
  console.log(
    [
      '',
      'Kubently Storage is running (serverless offline)',
      `  URL:      ${baseUrl}   (health: ${baseUrl}/health → ${state})`,
      `  Backend:  ${backend}${note}`,
      '  Real servers:',
      '    STORAGE_BACKEND=redis REDIS_URL=redis://127.0.0.1:6379 npm start',
      '  Stop with Ctrl-C.',
      '',
    ].join('\n'),
  );
}

function optionValue(argv: string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === name) return argv[i + 1];
    if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
  }
  return undefined;
}
