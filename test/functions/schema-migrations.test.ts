/**
 * Schema migrations on deploy: functions/schema-migrations.ts as CloudFormation's custom resource invokes
 * it — Create, Update and Delete events — against the real PostgreSQL, answering through the
 * pre-signed response URL (here a local HTTP server receiving the PUT). A failing migration
 * answers FAILED with its message (the deploy stops); runs at once apply each file once.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CustomResourceEvent, CustomResourceResponse } from '../../functions/schema-migrations.js';
import { testDatabaseUrl } from '../support/backends.js';
import { lambdaContext } from '../support/lambda.js';

/** The repository's schema migrations, in order: what a deploy applies to a new schema. */
const MIGRATIONS = readdirSync(fileURLToPath(new URL('../../migrations', import.meta.url)))
  .filter((file) => /^\d{4}_.+\.sql$/.test(file))
  .sort();
const VERSION = String(MIGRATIONS.length);

const DB_URL = testDatabaseUrl();
const run = randomBytes(3).toString('hex');
let counter = 0;
const schemas: string[] = [];

interface Put {
  path: string;
  headers: IncomingHttpHeaders;
  body: CustomResourceResponse;
}
const puts: Put[] = [];
const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    if (request.method === 'PUT') {
      puts.push({
        path: request.url ?? '',
        headers: request.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      });
    }
    response.writeHead(request.method === 'PUT' ? 200 : 405);
    response.end();
  });
});
let responseUrl = '';
const dir = mkdtempSync(join(tmpdir(), 'kubently-migrate-fn-'));

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  responseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
  const client = new pg.Client({ connectionString: DB_URL });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
});
afterEach(() => {
  vi.unstubAllEnvs();
  puts.length = 0;
});

/** The migrate function of a fresh container, configured for a new schema (or `env`). */
async function migrateFunction(
  env: Record<string, string> = {},
  migrationsDir?: string,
  remainingMs = 120_000,
) {
  const schema = `kst_deploy_${run}_${counter++}`;
  schemas.push(schema);
  vi.resetModules();
  const settings = {
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    STORAGE_CONFIG: '',
    STORAGE_BACKEND: 'postgresql',
    POSTGRES_DRIVER: 'pg',
    DATABASE_URL: DB_URL,
    POSTGRES_SCHEMA: schema,
    ...env,
  };
  for (const [name, value] of Object.entries(settings)) vi.stubEnv(name, value);
  const module = await import('../../functions/schema-migrations.js');
  if (migrationsDir) module.useMigrationsDir(migrationsDir);
  const invoke = (type: CustomResourceEvent['RequestType'], physicalId?: string) =>
    module.handler(
      {
        RequestType: type,
        ResponseURL: `${responseUrl}/response/${randomUUID()}?X-Amz-Signature=abc`,
        StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/kubently-storage-prod/1',
        RequestId: randomUUID(),
        LogicalResourceId: 'SchemaMigrations',
        ...(physicalId ? { PhysicalResourceId: physicalId } : {}),
        ResourceProperties: { ServiceToken: 'arn:aws:lambda:…', Deployment: new Date().toISOString() },
      },
      { ...lambdaContext('migrate'), getRemainingTimeInMillis: () => remainingMs },
    );
  return { schema, invoke };
}

async function applied(schema: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: DB_URL });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT version, name FROM "${schema}".schema_migrations ORDER BY version`,
    );
    return rows.map((row) => `${String(row.version).padStart(4, '0')}_${row.name}.sql`);
  } finally {
    await client.end();
  }
}

describe('the migrate function as a CloudFormation custom resource', () => {
  it('Create applies every migration and answers SUCCESS on the response URL; Update finds it up to date; Delete keeps the schema', async () => {
    const { schema, invoke } = await migrateFunction();
    const created = await invoke('Create');
    expect(puts).toHaveLength(1);
    expect(puts[0]!.body).toEqual(created);
    // Signed with an empty content type: anything else and S3 refuses the PUT.
    expect(puts[0]!.headers['content-type']).toBe('');
    expect(puts[0]!.path).toMatch(/^\/response\/.+\?X-Amz-Signature=abc$/);
    expect(created).toMatchObject({
      Status: 'SUCCESS',
      LogicalResourceId: 'SchemaMigrations',
      PhysicalResourceId: 'SchemaMigrations-schema',
      Data: { Version: VERSION },
    });
    expect(created.Reason).toBe(
      `schema "${schema}" at version ${VERSION} (applied ${MIGRATIONS.join(', ')})`,
    );
    expect(await applied(schema)).toEqual(MIGRATIONS);

    const updated = await invoke('Update', created.PhysicalResourceId);
    expect(updated).toMatchObject({
      Status: 'SUCCESS',
      PhysicalResourceId: created.PhysicalResourceId,
      Data: { Version: VERSION, Applied: '' },
    });
    expect(updated.Reason).toBe(`schema "${schema}" at version ${VERSION} (up to date)`);

    const deleted = await invoke('Delete', created.PhysicalResourceId);
    expect(deleted).toMatchObject({ Status: 'SUCCESS', Reason: 'the schema and its data are kept' });
    expect(await applied(schema)).toEqual(MIGRATIONS);
    expect(puts.map((put) => put.body.Status)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS']);
  });

  it('a failing migration answers FAILED with its message, keeping nothing of it', async () => {
    const migrations = join(dir, 'failing');
    rmSync(migrations, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(migrations);
    writeFileSync(join(migrations, '0001_table.sql'), 'CREATE TABLE things (id int PRIMARY KEY);\n');
    writeFileSync(
      join(migrations, '0002_broken.sql'),
      'CREATE INDEX things_id ON things (id);\nALTER TABLE things ADD COLUMN;\n',
    );
    const { schema, invoke } = await migrateFunction({}, migrations);
    const response = await invoke('Create');
    expect(response.Status).toBe('FAILED');
    expect(response.Reason).toMatch(
      /^migration 0002_broken\.sql failed at line 2: syntax error .* \(SQLSTATE 42601\)$/,
    );
    expect(puts[0]!.body.Status).toBe('FAILED');
    expect(await applied(schema)).toEqual(['0001_table.sql']);
  });

  it('a migration that would outlive the function is cancelled and answered FAILED, keeping nothing of it', async () => {
    const migrations = join(dir, 'slow');
    rmSync(migrations, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(migrations);
    writeFileSync(join(migrations, '0001_table.sql'), 'CREATE TABLE things (id int PRIMARY KEY);\n');
    writeFileSync(
      join(migrations, '0002_slow.sql'),
      'SELECT pg_sleep(5);\nCREATE INDEX things_id ON things (id);\n',
    );
    // 16 s left: 15 s are kept to answer, 1 s for the migrations.
    const { schema, invoke } = await migrateFunction({}, migrations, 16_000);
    const response = await invoke('Create');
    expect(response.Status).toBe('FAILED');
    expect(response.Reason).toMatch(/statement timeout|did not finish within 1 s/);
    expect(await applied(schema)).toEqual(['0001_table.sql']);
  });

  it('deploys that overlap apply each migration once (advisory lock)', async () => {
    const first = await migrateFunction();
    vi.resetModules();
    const responses = await Promise.all([
      first.invoke('Create'),
      first.invoke('Update', 'SchemaMigrations-schema'),
    ]);
    expect(responses.map((r) => r.Status)).toEqual(['SUCCESS', 'SUCCESS']);
    const appliedBy = responses.map((r) => r.Data.Applied ?? '');
    expect(appliedBy.join(',').split(',').filter(Boolean).sort()).toEqual(MIGRATIONS);
    expect(await applied(first.schema)).toEqual(MIGRATIONS);
  });

  it('a configuration without PostgreSQL has nothing to migrate; a database it cannot reach fails the deploy', async () => {
    const redis = await migrateFunction({
      STORAGE_BACKEND: 'redis',
      REDIS_URL: 'redis://127.0.0.1:6379',
      DATABASE_URL: '',
    });
    expect(await redis.invoke('Create')).toMatchObject({
      Status: 'SUCCESS',
      Reason: 'nothing to migrate: the configuration uses no PostgreSQL',
    });
    const closed = await migrateFunction({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test' });
    const response = await closed.invoke('Create');
    expect(response.Status).toBe('FAILED');
    expect(response.Reason).toMatch(/ECONNREFUSED|connect/);
  });

  it('answers even when the response URL cannot be reached (and never throws)', async () => {
    const { invoke } = await migrateFunction({
      STORAGE_BACKEND: 'redis',
      REDIS_URL: 'redis://127.0.0.1:6379',
      DATABASE_URL: '',
    });
    const previous = responseUrl;
    responseUrl = 'http://127.0.0.1:1';
    try {
      expect((await invoke('Delete', 'SchemaMigrations-schema')).Status).toBe('SUCCESS');
    } finally {
      responseUrl = previous;
    }
  });
});
