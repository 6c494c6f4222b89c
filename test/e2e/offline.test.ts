/**
 * The whole HTTP API end to end over `serverless offline`: the real bundles (serverless-esbuild),
 * the real HTTP API emulation (routing, path parameter decoding, headers), on the real
 * PostgreSQL server in a schema of its own. Started by `npm start`'s script through the e2e
 * harness (test/support/servers/offline.ts), so it never clashes with a running `npm start`. The
 * functions are also invoked directly through offline's Lambda endpoint with the AWS SDK.
 */
import { randomBytes } from 'node:crypto';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../lib/config/index.js';
import { applySchemaMigrations } from '../../lib/storage/postgresql/schema-migrations.js';
import { createSql, quoteIdent } from '../../lib/storage/postgresql/sql.js';
import { postgresBackend, testDatabaseUrl } from '../support/backends.js';
import { type Offline, startOffline } from '../support/servers/offline.js';

const DATABASE_URL = testDatabaseUrl();
const SCHEMA = `kst_e2e_${randomBytes(4).toString('hex')}`;
const STARTUP_TIMEOUT_MS = 150_000;

const unavailable = await postgresBackend({ name: 'postgresql-pg', driver: 'pg' }).available();
if (unavailable !== undefined && !process.env.CI) console.warn(`\n⚠ e2e HTTP API SKIPPED: ${unavailable}\n`);
const suite = unavailable === undefined || process.env.CI ? describe : describe.skip;
// A skipped run says why in its title, not only in the warning above.
const skipReason = unavailable === undefined || process.env.CI ? '' : ` — SKIPPED: ${unavailable}`;

const adminSql = () =>
  createSql(resolveConfig({ postgresql: { url: DATABASE_URL, listen: false } }).postgresql);

suite(`HTTP API over serverless offline [postgresql]${skipReason}`, () => {
  let offline: Offline;
  let token = '';

  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${offline.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, json: text ? JSON.parse(text) : undefined };
  };

  beforeAll(async () => {
    if (unavailable !== undefined) throw new Error(`PostgreSQL is unavailable under CI: ${unavailable}`);
    const sql = await adminSql();
    try {
      await applySchemaMigrations(sql, { schema: SCHEMA });
    } finally {
      await sql.close();
    }
    offline = await startOffline({
      env: {
        STORAGE_BACKEND: 'postgresql',
        DATABASE_URL,
        POSTGRES_DRIVER: 'pg',
        POSTGRES_SCHEMA: SCHEMA,
      },
      timeoutMs: STARTUP_TIMEOUT_MS,
    });
    token = offline.adminToken;
  }, STARTUP_TIMEOUT_MS + 40_000);

  afterAll(async () => {
    await offline?.stop();
    const sql = await adminSql();
    try {
      await sql.query(`DROP SCHEMA IF EXISTS ${quoteIdent(SCHEMA)} CASCADE`);
    } finally {
      await sql.close();
    }
  }, 60_000);

  it('GET /health answers 200 ok on postgresql, without a token', async () => {
    const response = await fetch(`${offline.baseUrl}/health`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({
      status: 'ok',
      backend: 'postgresql',
      checks: { postgresql: { ok: true, latencyMs: expect.any(Number) } },
    });
  });

  it('kv: URL-encoded names (slash, percent, space, emoji) reach the store decoded, once', async () => {
    for (const key of ['plain', 'a/b', '100%', 'two words', 'caf\u00e9-\u{1F680}', '%2F']) {
      const path = `/kv/${encodeURIComponent(key)}`;
      expect((await api('PUT', path, { value: { key } })).status, key).toBe(200);
      expect((await api('GET', path)).json, key).toEqual({ key, value: { key }, expiresAt: null });
      expect((await api('POST', `${path}/incr`)).status, key).toBe(409);
      expect((await api('DELETE', path)).status, key).toBe(204);
      expect((await api('GET', path)).status, key).toBe(404);
    }
  });

  it('refuses bad input and bad tokens with docs/api.md error bodies', async () => {
    const missing = await api('GET', '/kv/x', undefined, { authorization: '' });
    expect(missing.status).toBe(401);
    expect(missing.json).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    const apiKey = await api('GET', '/kv/absent', undefined, { authorization: '', 'x-api-key': token });
    expect(apiKey.status).toBe(404);
    const malformed = await api('PUT', '/kv/x', '{"value": ');
    expect(malformed.status).toBe(400);
    expect(malformed.json.error.code).toBe('bad_request');
    const unknown = await api('PUT', '/kv/x', { value: 1, colour: 'red' });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error.message).toContain('body.colour');
    const tooBig = await api('PUT', '/kv/x', { value: 'x'.repeat(300 * 1024) });
    expect(tooBig.status).toBe(413);
    expect(tooBig.json.error.code).toBe('payload_too_large');
    expect((await api('GET', '/kv/x')).status).toBe(404);
  });

  it('sessions, active clusters, queues with a long poll, events and tokens over HTTP', async () => {
    const clusterId = `cluster-${randomBytes(3).toString('hex')}`;
    const created = await api('POST', '/sessions', { clusterId, correlationId: 'corr-1', ttl: 60 });
    expect(created.status).toBe(201);
    expect((await api('GET', `/clusters/${clusterId}/active`)).json).toEqual({ clusterId, active: true });
    expect((await api('GET', `/sessions?clusterId=${clusterId}`)).json.sessions).toHaveLength(1);
    expect((await api('DELETE', `/sessions/${created.json.sessionId}`)).status).toBe(204);
    expect((await api('GET', `/clusters/${clusterId}/active`)).json.active).toBe(false);

    const waiting = api('POST', '/queues/jobs/receive', { wait: 15 });
    const sent = await api('POST', '/queues/jobs/messages', { payload: { n: 1 }, dedupId: 'once' });
    expect(sent.status).toBe(201);
    expect((await api('POST', '/queues/jobs/messages', { payload: { n: 2 }, dedupId: 'once' })).status).toBe(
      200,
    );
    const [message] = (await waiting).json.messages;
    expect(message).toMatchObject({ id: sent.json.id, payload: { n: 1 }, attempts: 1 });
    expect(
      (await api('POST', `/queues/jobs/messages/${message.id}/ack`, { receipt: message.receipt })).status,
    ).toBe(204);
    expect((await api('GET', '/queues/jobs')).json).toEqual({
      queue: 'jobs',
      depth: 0,
      inFlight: 0,
      dead: 0,
    });

    const published = await api('POST', '/channels/news/messages', { message: { headline: 'hi' } });
    expect(published.status).toBe(202);
    const history = await api('GET', '/channels/news/messages?limit=10');
    expect(history.json.messages).toEqual([
      {
        id: published.json.id,
        channel: 'news',
        message: { headline: 'hi' },
        publishedAt: published.json.publishedAt,
      },
    ]);

    const issued = await api('POST', '/tokens', {
      identity: 'reader',
      scopes: ['kv:read'],
      resources: ['pub-*'],
    });
    expect(issued.status).toBe(201);
    const reader = { authorization: `Bearer ${issued.json.token}` };
    expect((await api('GET', '/kv/pub-x', undefined, reader)).status).toBe(404);
    expect((await api('GET', '/kv/secret', undefined, reader)).status).toBe(403);
    expect((await api('PUT', '/kv/pub-x', { value: 1 }, reader)).status).toBe(403);
    expect((await api('DELETE', `/tokens/${issued.json.id}`)).status).toBe(204);
    expect((await api('GET', '/kv/pub-x', undefined, reader)).status).toBe(401);
  });

  it('functions answer through the Lambda invoke endpoint (AWS SDK): health and cleanup', async () => {
    const lambda = new LambdaClient({
      endpoint: offline.lambdaEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'e2e', secretAccessKey: 'e2e' },
    });
    try {
      const health = await lambda.send(
        new InvokeCommand({
          FunctionName: 'kubently-storage-dev-health',
          Payload: JSON.stringify({
            version: '2.0',
            routeKey: 'GET /health',
            rawPath: '/health',
            headers: {},
            requestContext: { http: { method: 'GET', path: '/health' }, requestId: 'invoke-1' },
          }),
        }),
      );
      expect(health.FunctionError).toBeUndefined();
      const answer = JSON.parse(Buffer.from(health.Payload!).toString('utf8'));
      expect(answer.statusCode).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ status: 'ok', backend: 'postgresql' });

      const cleanup = await lambda.send(
        new InvokeCommand({ FunctionName: 'kubently-storage-dev-cleanup', Payload: '{}' }),
      );
      expect(cleanup.FunctionError).toBeUndefined();
      expect(cleanup.StatusCode).toBe(200);
    } finally {
      lambda.destroy();
    }
  });
});
