// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are YAML with ${VAR} references, not templates
/**
 * Secrets at run time: a function whose environment references its secrets (`<VAR>_SECRET`)
 * fetches them from SSM Parameter Store and Secrets Manager through Powertools Parameters and the
 * real AWS SDK clients — here against a local stand-in for both services (`AWS_ENDPOINT_URL`) —
 * caches them for `SECRETS_MAX_AGE`, picks up a rotated value after that without a redeploy,
 * and at once after a backend refused the credentials (against the real PostgreSQL).
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { testDatabaseUrl } from '../support/backends.js';
import { httpEvent, lambdaContext } from '../support/lambda.js';

const PG_URL = testDatabaseUrl();

/** SSM and Secrets Manager as their JSON APIs answer; `values` is what they hold. */
const store = {
  values: new Map<string, string>(),
  requests: [] as { target: string; body: Record<string, unknown> }[],
};
const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const target = String(request.headers['x-amz-target'] ?? '');
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    store.requests.push({ target, body });
    const answer = (status: number, json: unknown) => {
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify(json));
    };
    const id = String(body.Name ?? body.SecretId);
    const value = store.values.get(id);
    if (target === 'AmazonSSM.GetParameter') {
      if (value === undefined)
        return answer(400, { __type: 'ParameterNotFound', message: `${id} not found` });
      return answer(200, { Parameter: { Name: id, Type: 'SecureString', Value: value, Version: 1 } });
    }
    if (target === 'secretsmanager.GetSecretValue') {
      if (value === undefined)
        return answer(400, { __type: 'ResourceNotFoundException', message: `${id} not found` });
      return answer(200, { ARN: id, Name: id, SecretString: value, VersionId: randomUUID() });
    }
    answer(400, { __type: 'UnknownOperationException', message: target });
  });
});
let endpoint = '';
const dir = mkdtempSync(join(tmpdir(), 'kubently-secrets-'));

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.unstubAllEnvs();
  store.values.clear();
  store.requests.length = 0;
});

async function dropSchema(schema: string): Promise<void> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
}

const SSM = (name: string) => `/kubently-test/${name}-${randomUUID()}`;
const SECRET_ARN = () =>
  `arn:aws:secretsmanager:us-east-1:123456789012:secret:kubently-test/${randomUUID()}-AbCdEf`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** A fresh container: the environment set, then the handler modules loaded anew. */
async function container(env: Record<string, string>) {
  vi.resetModules();
  const base = {
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: endpoint,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_TRACE_ENABLED: '',
    STORAGE_CONFIG: '',
    STORAGE_BACKEND: 'memory',
    DATABASE_URL: '',
    REDIS_URL: '',
    REDIS_PASSWORD: '',
    BOOTSTRAP_TOKEN_HASH: '',
    POSTGRES_SCHEMA: '',
  };
  for (const [name, value] of Object.entries({ ...base, ...env })) vi.stubEnv(name, value);
  const kv = (await import('../../functions/kv.js')).handler;
  const health = (await import('../../functions/health.js')).handler;
  const storage = await import('../../functions/runtime/storage.js');
  const secrets = await import('../../functions/runtime/secrets.js');
  const get = async (token: string) => {
    const event = httpEvent('GET', '/kv/{key}', {
      pathParameters: { key: 'k' },
      headers: { authorization: `Bearer ${token}` },
    });
    event.rawPath = '/kv/k';
    return (await kv(event, lambdaContext('kv'))).statusCode;
  };
  return {
    get,
    health: () => health(httpEvent('GET', '/health'), lambdaContext('health')),
    storage,
    secrets,
  };
}

describe('secrets by reference', () => {
  it('without references nothing is fetched and the variables are used as they are', async () => {
    const token = 'kbs_plain';
    const c = await container({ BOOTSTRAP_TOKEN_HASH: sha256(token) });
    expect(await c.get(token)).toBe(404);
    expect(store.requests).toEqual([]);
  });

  it('SSM and Secrets Manager values reach the configuration, REDIS_PASSWORD and ${VAR} references in the file included', async () => {
    const hash = SSM('bootstrap-hash');
    const password = SECRET_ARN();
    store.values.set(hash, `${sha256('kbs_admin')}\n`);
    store.values.set(password, 'redis-password-from-secrets-manager');
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'storage:\n  backend: memory\nredis:\n  password: ${REDIS_PASSWORD}\n');
    const c = await container({
      STORAGE_CONFIG: file,
      BOOTSTRAP_TOKEN_HASH_SECRET: hash,
      REDIS_PASSWORD_SECRET: password,
    });
    expect(await c.get('kbs_admin')).toBe(404);
    const config = c.storage.getStorageConfig();
    expect(config.redis.password).toBe('redis-password-from-secrets-manager');
    expect(config.auth.bootstrapTokenHash).toBe(sha256('kbs_admin'));
    expect(store.requests.map((r) => [r.target, r.body.WithDecryption ?? null]).sort()).toEqual([
      ['AmazonSSM.GetParameter', true],
      ['secretsmanager.GetSecretValue', null],
    ]);
  });

  it('fetched once per SECRETS_MAX_AGE; a rotated value is used after it, without a redeploy', async () => {
    const hash = SSM('bootstrap-hash');
    store.values.set(hash, sha256('kbs_before'));
    const c = await container({ BOOTSTRAP_TOKEN_HASH_SECRET: hash, SECRETS_MAX_AGE: '1' });
    expect(await c.get('kbs_before')).toBe(404);
    expect(await c.get('kbs_before')).toBe(404);
    expect(store.requests).toHaveLength(1);

    store.values.set(hash, sha256('kbs_after'));
    // Cached: the old value still serves until it is a second old.
    expect(await c.get('kbs_after')).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await c.get('kbs_after')).toBe(404);
    expect(await c.get('kbs_before')).toBe(401);
    expect(store.requests).toHaveLength(2);
  });

  it('a refused login has the secrets fetched again at once, well before SECRETS_MAX_AGE', async () => {
    const url = SSM('database-url');
    const hash = SSM('bootstrap-hash');
    // The container starts with credentials the database refuses (a role that does not exist).
    const refused = new URL(PG_URL);
    refused.username = `rotated_${randomUUID().slice(0, 8)}`;
    store.values.set(url, refused.toString());
    store.values.set(hash, sha256('kbs_admin'));
    const schema = `secrets_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const file = join(dir, `migrating-${schema}.yaml`);
    writeFileSync(file, 'postgresql:\n  migrate: true\n');
    const c = await container({
      STORAGE_CONFIG: file,
      STORAGE_BACKEND: 'postgresql',
      POSTGRES_DRIVER: 'pg',
      POSTGRES_SCHEMA: schema,
      DATABASE_URL_SECRET: url,
      BOOTSTRAP_TOKEN_HASH_SECRET: hash,
      SECRETS_MAX_AGE: '3600',
    });
    try {
      // The container fetched the credentials of the time; then they were rotated in the store.
      await c.secrets.refreshSecrets();
      store.values.set(url, PG_URL);
      // The old ones are refused, and fetched again at once: the next request uses the new ones.
      expect(await c.get('kbs_admin')).toBe(503);
      expect(store.requests.filter((r) => r.body.Name === url)).toHaveLength(2);
      expect(await c.get('kbs_admin')).toBe(404);
    } finally {
      await dropSchema(schema);
      await c.storage.getStorage().close();
    }
  });

  it('a reference that cannot be read answers 503 without saying where the secret lives', async () => {
    const c = await container({ BOOTSTRAP_TOKEN_HASH_SECRET: SSM('missing') });
    const response = await c.health();
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body as string)).toMatchObject({
      status: 'down',
      error: { message: 'secrets is unavailable' },
    });
    expect(await c.get('kbs_any')).toBe(503);
  });

  it('a malformed reference is a configuration error naming the variable', async () => {
    const c = await container({ DATABASE_URL_SECRET: 'database-url' });
    const body = JSON.parse((await c.health()).body as string);
    expect(body.error.message).toMatch(
      /^invalid configuration: DATABASE_URL_SECRET: expected an SSM parameter name/,
    );
  });
});
