/**
 * A throwaway three-primary Redis Cluster on loopback, from the machine's redis-server, so
 * the conformance suite proves every script and multi-key command works in cluster mode
 * (no CROSSSLOT, no undeclared cross-slot keys). Started on demand, stopped by `stop()`.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BASE_PORT = Number(process.env.REDIS_CLUSTER_BASE_PORT ?? 7301);
export const CLUSTER_PORTS = [BASE_PORT, BASE_PORT + 1, BASE_PORT + 2];
export const CLUSTER_URL = `redis://127.0.0.1:${BASE_PORT}`;

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

async function clusterOk(): Promise<boolean> {
  try {
    return (await cli(BASE_PORT, 'cluster', 'info')).includes('cluster_state:ok');
  } catch {
    return false;
  }
}

/**
 * Starts a cluster unless one already answers. `unavailable` says why none can be had here;
 * `started` is true when this call started it (so the caller stops it).
 */
export async function startRedisCluster(): Promise<{ unavailable?: string; started: boolean }> {
  if (await clusterOk()) return { started: false };
  try {
    await run('redis-server', ['--version']);
  } catch {
    return { unavailable: 'redis-server is not installed (apt-get install redis-server)', started: false };
  }
  for (const port of CLUSTER_PORTS) {
    const dir = join(tmpdir(), `kst-redis-cluster-${port}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    await run('redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, 'nodes.conf'),
      '--cluster-node-timeout',
      '5000',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'yes',
      '--logfile',
      join(dir, 'redis.log'),
    ]);
  }
  for (const port of CLUSTER_PORTS) await waitFor(async () => (await cli(port, 'ping')).trim() === 'PONG');
  await run(
    'redis-cli',
    [
      '--cluster',
      'create',
      ...CLUSTER_PORTS.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ],
    { timeout: 30_000 },
  );
  await waitFor(clusterOk);
  return { started: true };
}

export async function stopRedisCluster(): Promise<void> {
  for (const port of CLUSTER_PORTS) {
    await cli(port, 'shutdown', 'nosave').catch(() => {});
    rmSync(join(tmpdir(), `kst-redis-cluster-${port}`), { recursive: true, force: true });
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error('redis cluster did not come up in time');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
