/**
 * `npm start` with nothing running: the default is the embedded PostgreSQL (PGlite under the data
 * directory, served to the functions over a local socket). `REDIS_URL` and `DATABASE_URL` point at
 * closed ports and `STORAGE_BACKEND` is unset, so any use of a real server would show. Then: a
 * second instance on the same data directory is refused, and a restart keeps data and token.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePorts, type Offline, OfflineStartError, startOffline } from '../support/servers/offline.js';

// Bundling and starting take 10–30 s on a small shared machine; these are ceilings, not expectations.
const STARTUP_TIMEOUT_MS = 150_000;

let dataDir = '';
let offline: Offline | undefined;
let env: Record<string, string> = {};

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'kubently-start-'));
  const [redisPort, postgresPort] = await freePorts(2);
  env = {
    STORAGE_BACKEND: '',
    POSTGRES_DRIVER: '',
    BOOTSTRAP_TOKEN_HASH: '',
    KUBENTLY_ADMIN_TOKEN: '',
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    DATABASE_URL: `postgres://postgres@127.0.0.1:${postgresPort}/closed`,
  };
  offline = await startOffline({ env, dataDir, timeoutMs: STARTUP_TIMEOUT_MS });
}, STARTUP_TIMEOUT_MS + 40_000);

afterAll(async () => {
  await offline?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}, 90_000);

function call(method: string, path: string, body?: unknown, token = offline!.adminToken): Promise<Response> {
  return fetch(`${offline!.baseUrl}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A ceiling meant for a busy machine, never an expectation. */
const PRINTED_WITHIN_MS = 60_000;

describe('npm start with no server running', () => {
  it('serves /health on the embedded postgresql backend', async () => {
    const response = await fetch(`${offline!.baseUrl}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: 'ok',
      backend: 'postgresql',
      checks: { postgresql: { ok: true, latencyMs: expect.any(Number) } },
    });
  });

  it('prints an admin token, keeps it in the data directory (0600), and the banner shows how to use it', () => {
    expect(offline!.adminToken).toMatch(/^kbs_[A-Za-z0-9_-]{43}$/);
    const file = join(dataDir, 'admin-token');
    expect(readFileSync(file, 'utf8').trim()).toBe(offline!.adminToken);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const output = offline!.output();
    expect(output).toContain(`TOKEN=${offline!.adminToken}`);
    expect(output).toContain('curl -H "Authorization: Bearer $TOKEN"');
    expect(output).toContain('embedded PGlite');
  });

  it('suggests a WebSocket line with a tool that is there, and the line subscribes', async () => {
    const line = /^ {4}(\S.*"ws:\/\/localhost:\d+\?token=\$TOKEN".*)$/m.exec(offline!.output())?.[1];
    expect(line).toBeDefined();
    if (line!.startsWith('wscat ')) {
      // Interactive: that it is on the PATH is what the banner promises.
      expect(spawnSync('sh', ['-c', 'command -v wscat']).status).toBe(0);
      return;
    }
    expect(line).toMatch(/^node -e /);
    const command = line!.replace(/\s+\(from .*\)$/, '');
    const client = spawn('bash', ['-c', command], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { ...process.env, TOKEN: offline!.adminToken },
      detached: true,
    });
    let printed = '';
    client.stdout.on('data', (chunk) => {
      printed += chunk;
    });
    client.stderr.on('data', (chunk) => {
      printed += chunk;
    });
    try {
      await vi.waitFor(() => expect(printed).toContain('"type":"subscribed"'), {
        timeout: PRINTED_WITHIN_MS,
      });
      const published = await call('POST', '/channels/demo/messages', { message: 'from the tour' });
      expect(published.status).toBe(202);
      await vi.waitFor(() => expect(printed).toContain('"message":"from the tour"'), {
        timeout: PRINTED_WITHIN_MS,
      });
    } finally {
      if (client.pid !== undefined) process.kill(-client.pid, 'SIGTERM');
    }
  }, 90_000);

  it('refuses calls without a valid token', async () => {
    expect((await call('GET', '/kv/hello', undefined, '')).status).toBe(401);
    expect((await call('GET', '/kv/hello', undefined, 'kbs_not-a-token')).status).toBe(401);
  });

  it('round-trips a kv value with the admin token', async () => {
    const put = await call('PUT', '/kv/hello', { value: 'world' });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ key: 'hello', expiresAt: null });
    const get = await call('GET', '/kv/hello');
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ key: 'hello', value: 'world', expiresAt: null });
  });

  it('serves sessions, events and a waiting queue receive through the one embedded database', async () => {
    const session = await call('POST', '/sessions', { clusterId: 'local-e2e' });
    expect(session.status).toBe(201);
    const active = await call('GET', '/clusters/local-e2e/active');
    expect(await active.json()).toEqual({ clusterId: 'local-e2e', active: true });

    const published = await call('POST', '/channels/e2e-history/messages', { message: { n: 1 } });
    expect(published.status).toBe(202);
    const history = (await (await call('GET', '/channels/e2e-history/messages')).json()) as {
      messages: Array<{ message: unknown }>;
    };
    expect(history.messages.map((m) => m.message)).toEqual([{ n: 1 }]);

    // A long poll in one function while another function sends: both on the shared database.
    const receiving = call('POST', '/queues/jobs/receive', { wait: 8, visibilityTimeout: 30 });
    const sent = await call('POST', '/queues/jobs/messages', { payload: { job: 1 } });
    expect(sent.status).toBe(201);
    const { id } = (await sent.json()) as { id: string };
    let received = (await (await receiving).json()) as {
      messages: Array<{ id: string; receipt: string; payload: unknown }>;
    };
    // Should the send have landed after the wait ended, the message is simply still there.
    if (received.messages.length === 0) {
      received = (await (await call('POST', '/queues/jobs/receive', { wait: 8 })).json()) as typeof received;
    }
    expect(received.messages.map((m) => [m.id, m.payload])).toEqual([[id, { job: 1 }]]);
    const ack = await call('POST', `/queues/jobs/messages/${id}/ack`, {
      receipt: received.messages[0]!.receipt,
    });
    expect(ack.status).toBe(204);
  }, 60_000);

  it('refuses a second instance on the same data directory, saying why', async () => {
    const error = await startOffline({ env, dataDir, timeoutMs: STARTUP_TIMEOUT_MS }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OfflineStartError);
    expect((error as OfflineStartError).exitCode).toBe(1);
    expect((error as OfflineStartError).output).toMatch(
      /data directory .* is in use by another running instance/,
    );
    // The first one is unharmed.
    expect((await call('GET', '/kv/hello')).status).toBe(200);
  }, 60_000);

  it(
    'keeps data and the admin token across a restart on the same data directory',
    async () => {
      const token = offline!.adminToken;
      await offline!.stop();
      offline = undefined;
      offline = await startOffline({ env, dataDir, timeoutMs: STARTUP_TIMEOUT_MS });
      expect(offline.adminToken).toBe(token);
      const get = await call('GET', '/kv/hello');
      expect(get.status).toBe(200);
      expect(await get.json()).toEqual({ key: 'hello', value: 'world', expiresAt: null });
    },
    STARTUP_TIMEOUT_MS + 90_000,
  );
});
