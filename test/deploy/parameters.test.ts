/**
 * A stage's parameters (deploy/parameters.cjs): `dev` needs none and takes the shell's settings;
 * every other stage needs its own and never falls back to the shell or to empty. Packaging a
 * deployed stage without them fails naming each one (a real `serverless package`, once); the
 * rest is checked on the parameters module itself: the memory backend, a missing bootstrap hash,
 * secrets a backend needs, secrets written in a configuration file, unknown names, references
 * that are not references, half a VPC, and more connections than the database takes.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { PACKAGE_TIMEOUT_MS, PackageError, root, serverlessPackage } from './support.js';

const require = createRequire(import.meta.url);
interface Deployment {
  local: boolean;
  environment: Record<string, unknown>;
  secrets: Record<string, string>;
  vpc: unknown;
  concurrency: Record<string, number>;
  storage: { backend: string; backends: string[] } | null;
}
const deployment = require('../../deploy/parameters.cjs') as (input: {
  options: Record<string, unknown>;
  resolveConfigurationProperty: (path: string[]) => Promise<unknown>;
}) => Promise<Deployment>;
const docs = require('../../deploy/docs.cjs') as { DOC: string; isCurrent(text: string): boolean };
const { functionRole } = require('../../deploy/iam.cjs') as {
  functionRole(fn: string, context: Record<string, unknown>): { Properties: Record<string, unknown> };
};

// Configuration files must be inside the project (they are packaged at their relative path).
mkdirSync(join(root, 'node_modules/.cache'), { recursive: true });
const dir = mkdtempSync(join(root, 'node_modules/.cache/kubently-parameters-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.unstubAllEnvs());

const resolve = async (path: string[]) => (path.join('.') === 'service' ? 'kubently-storage' : undefined);
const stage = (name: string, params: Record<string, string> = {}) =>
  deployment({
    options: { stage: name, param: Object.entries(params).map(([key, value]) => `${key}=${value}`) },
    resolveConfigurationProperty: resolve,
  });
const problems = async (name: string, params: Record<string, string> = {}) => {
  const error = (await stage(name, params).catch((caught: unknown) => caught)) as Error;
  expect(error).toBeInstanceOf(Error);
  expect(error.stack).toBe(error.message);
  return error.message;
};

/** What a postgresql stage needs, all given. */
const POSTGRES = {
  storageBackend: 'postgresql',
  databaseUrl: '/kubently/test/database-url',
  bootstrapTokenHash: '/kubently/test/bootstrap-token-hash',
  alarmEmail: 'oncall@example.com',
};

/** The shell of someone who deploys from a laptop with local settings in it. */
function shell() {
  vi.stubEnv('STORAGE_BACKEND', 'memory');
  vi.stubEnv('DATABASE_URL', 'postgres://laptop:laptop-password@127.0.0.1:5432/test');
  vi.stubEnv('BOOTSTRAP_TOKEN_HASH', 'a'.repeat(64));
  vi.stubEnv('REDIS_URL', 'redis://127.0.0.1:6379');
  vi.stubEnv('STORAGE_CONFIG', '');
}

describe('packaging a deployed stage without parameters', () => {
  it(
    'fails naming every parameter it needs, whatever the shell has',
    async () => {
      const error = await serverlessPackage(['--stage', 'staging'], {
        STORAGE_BACKEND: 'postgresql',
        DATABASE_URL: 'postgres://laptop:laptop-password@127.0.0.1:5432/test',
        BOOTSTRAP_TOKEN_HASH: 'a'.repeat(64),
      }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(PackageError);
      const { output } = error as PackageError;
      expect(output).toContain('stage staging: its parameters are missing or wrong');
      for (const name of [
        'storageBackend',
        'bootstrapTokenHash',
        'alarmEmail or alarmTopicArn',
        'databaseUrl and/or redisUrl',
      ]) {
        expect(output).toContain(`  - ${name}: required`);
      }
      expect(output).not.toContain('laptop-password');
      expect(output).not.toMatch(/\n\s+at .*\.cjs:\d+/);
    },
    PACKAGE_TIMEOUT_MS,
  );
});

describe('stage parameters', () => {
  it('dev needs none and takes the storage settings from the shell, as values; its build has no tracing', async () => {
    shell();
    vi.stubEnv('STORAGE_BACKEND', 'postgresql');
    const dev = await stage('dev');
    expect(dev.local).toBe(true);
    expect(dev.environment).toMatchObject({
      STORAGE_BACKEND: 'postgresql',
      DATABASE_URL: 'postgres://laptop:laptop-password@127.0.0.1:5432/test',
      POWERTOOLS_TRACE_ENABLED: 'false',
    });
    expect(dev.vpc).toBeNull();
    expect(dev.storage).toMatchObject({ backend: 'postgresql', backends: ['postgresql'] });
    expect(await problems('dev', { storageBackend: 'redis' })).toContain(
      'storageBackend: local stages take the storage settings from the shell (STORAGE_BACKEND)',
    );
  });

  it('a deployed stage takes only its parameters: secrets as references, nothing from the shell', async () => {
    shell();
    const prod = await stage('prod', { ...POSTGRES, 'concurrency.kv': '7' });
    expect(prod.local).toBe(false);
    expect(prod.environment).toMatchObject({
      STORAGE_BACKEND: 'postgresql',
      DATABASE_URL_SECRET: '/kubently/test/database-url',
      BOOTSTRAP_TOKEN_HASH_SECRET: '/kubently/test/bootstrap-token-hash',
      REDIS_URL_SECRET: '',
      POWERTOOLS_TRACE_ENABLED: 'true',
      STORAGE_CONFIG: '',
    });
    expect(JSON.stringify(prod.environment)).not.toMatch(/laptop|aaaaaaaa/);
    expect(prod.environment).not.toHaveProperty('DATABASE_URL');
    expect(prod.environment).not.toHaveProperty('OFFLINE_WEBSOCKET_ENDPOINT');
    expect(prod.concurrency).toMatchObject({ kv: 7, sessions: 20, cleanup: 1 });
  });

  it('the memory backend, a missing bootstrap hash and a backend without its URL are refused, each named', async () => {
    expect(await problems('prod', { ...POSTGRES, storageBackend: 'memory' })).toContain(
      'storageBackend: expected one of redis, postgresql, hybrid, got "memory"',
    );
    const { bootstrapTokenHash: _hash, ...withoutHash } = POSTGRES;
    expect(await problems('prod', withoutHash)).toContain('bootstrapTokenHash: required');
    const hybrid = await problems('prod', { ...POSTGRES, storageBackend: 'hybrid' });
    expect(hybrid).toContain('redisUrl: required (the configuration uses redis)');
    expect(hybrid).not.toContain('databaseUrl: required');
    const { alarmEmail: _email, ...silent } = POSTGRES;
    expect(await problems('prod', silent)).toContain('alarmEmail or alarmTopicArn: required');
  });

  // biome-ignore lint/suspicious/noTemplateCurlyInString: the title names YAML's ${VAR} references
  it('a secret written in the configuration file is refused; a ${VAR} reference there is fine', async () => {
    const literal = join(dir, 'literal.yaml');
    writeFileSync(literal, 'postgresql:\n  url: postgres://app:written-password@db:5432/app\n');
    const message = await problems('prod', { ...POSTGRES, storageConfig: relative(root, literal) });
    expect(message).toContain('postgresql.url is written in the file, which is packaged with the functions');
    expect(message).not.toContain('written-password');
    const referenced = join(dir, 'referenced.yaml');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: YAML with a ${VAR} reference
    writeFileSync(referenced, 'postgresql:\n  url: ${DATABASE_URL}\n  pool_size: 2\n');
    expect(
      (await stage('prod', { ...POSTGRES, storageConfig: relative(root, referenced) })).storage,
    ).toMatchObject({
      backend: 'postgresql',
    });
  });

  it('unknown names, references that are not references and half a VPC are refused without echoing values', async () => {
    const message = await problems('prod', {
      ...POSTGRES,
      databaseUrl: 'postgres://app:pasted-password@db:5432/app',
      'vpc.subnetId': 'subnet-0abc',
      'vpc.securityGroupIds': 'sg-0abc',
    });
    expect(message).toContain('databaseUrl: expected an SSM parameter name');
    expect(message).not.toContain('pasted-password');
    expect(message).toContain('vpc.subnetId: unknown parameter (did you mean vpc.subnetIds?)');
    expect(message).toContain('vpc.subnetIds and vpc.securityGroupIds: give both or neither');
  });

  it('more connections than the database takes are refused, with the arithmetic', async () => {
    const message = await problems('prod', { ...POSTGRES, postgresqlMaxConnections: '100' });
    // Default reserved concurrency 131 × (pool size 5 + the LISTEN connection).
    expect(message).toContain(
      'postgresqlMaxConnections: 100 is less than the 786 connections the functions may open (reserved concurrency 131 × 6 per container: postgresql.pool_size 5 + 1 for LISTEN)',
    );
    await expect(stage('prod', { ...POSTGRES, postgresqlMaxConnections: '786' })).resolves.toBeDefined();
  });

  it('the VPC, when set, reaches every role; when not, no role gets network permissions', async () => {
    const withVpc = await stage('prod', {
      ...POSTGRES,
      'vpc.subnetIds': 'subnet-0a,subnet-0b',
      'vpc.securityGroupIds': 'sg-0c',
    });
    expect(withVpc.vpc).toEqual({ subnetIds: ['subnet-0a', 'subnet-0b'], securityGroupIds: ['sg-0c'] });
    const context = (deploy: Deployment) => ({
      stage: 'prod',
      deploy,
      functionName: 'x',
      fanoutFunctionName: 'y',
    });
    expect(JSON.stringify(functionRole('kv', context(withVpc)).Properties.ManagedPolicyArns)).toContain(
      'AWSLambdaVPCAccessExecutionRole',
    );
    const without = await stage('prod', POSTGRES);
    expect(without.vpc).toBeNull();
    expect(functionRole('kv', context(without)).Properties).not.toHaveProperty('ManagedPolicyArns');
  });

  it('a parameters file nests names; the command line wins over it', async () => {
    const file = join(dir, 'params.yml');
    writeFileSync(
      file,
      'storageBackend: postgresql\ndatabaseUrl: /from/file\nbootstrapTokenHash: /hash\nalarmTopicArn: arn:aws:sns:us-east-1:123456789012:alarms\nconcurrency:\n  kv: 3\n',
    );
    const fromFile = await stage('qa', { paramsFile: relative(root, file), 'concurrency.kv': '4' });
    expect(fromFile.secrets).toEqual({ DATABASE_URL: '/from/file', BOOTSTRAP_TOKEN_HASH: '/hash' });
    expect(fromFile.concurrency.kv).toBe(4);
    expect(await problems('qa', { paramsFile: 'deploy/params/none.yml' })).toContain(
      'paramsFile: no such file',
    );
  });

  it('docs/deploying.md lists every parameter with its default, as the code defines them', () => {
    expect(docs.isCurrent(readFileSync(docs.DOC, 'utf8')), 'run npm run docs:parameters').toBe(true);
  });
});
