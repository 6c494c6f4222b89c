/**
 * `npm start` stops before bundling, with the cause in one line and a non-zero exit, when what
 * it was asked for cannot work: a Redis or PostgreSQL that does not answer, a host that does not
 * resolve, an unmigrated schema, or the memory backend (each function would hold its own store).
 * Nothing is bundled in these cases, so each start takes a few seconds.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { postgresBackend, testDatabaseUrl } from '../support/backends.js';
import { freePorts, OfflineStartError, startOffline } from '../support/servers/offline.js';

const CEILING_MS = 60_000;

const noPostgres = await postgresBackend({ name: 'postgresql-pg', driver: 'pg' }).available();
// Under CI an unreachable PostgreSQL fails the test instead.
const skipUnmigrated = noPostgres !== undefined && !process.env.CI;

/** The output and exit code of a start that must be refused; fails when it started instead. */
async function refused(env: Record<string, string>): Promise<{ output: string; exitCode: number | null }> {
  const error = await startOffline({
    env: { POSTGRES_DRIVER: '', POSTGRES_SCHEMA: '', STORAGE_CONFIG: '', KUBENTLY_ADMIN_TOKEN: '', ...env },
    timeoutMs: CEILING_MS,
  }).then(
    async (offline) => {
      await offline.stop();
      return new Error(`it started:\n${offline.output()}`);
    },
    (e: unknown) => e,
  );
  if (!(error instanceof OfflineStartError)) throw error;
  return { output: error.output, exitCode: error.exitCode };
}

describe('npm start refuses what cannot work, in one line', () => {
  it(
    'a Redis that does not answer: names it, exits 1, prints no banner',
    async () => {
      const [port] = await freePorts(1);
      const { output, exitCode } = await refused({
        STORAGE_BACKEND: 'redis',
        REDIS_URL: `redis://127.0.0.1:${port}`,
      });
      expect(exitCode).toBe(1);
      expect(output).toMatch(
        new RegExp(`^cannot reach Redis at redis://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`, 'm'),
      );
      expect(output).not.toContain('is running');
    },
    CEILING_MS,
  );

  it(
    'a DATABASE_URL whose server does not answer: names it without its password',
    async () => {
      const [port] = await freePorts(1);
      const { output, exitCode } = await refused({
        STORAGE_BACKEND: 'postgresql',
        DATABASE_URL: `postgres://app:s3cret-pw@127.0.0.1:${port}/app`,
      });
      expect(exitCode).toBe(1);
      expect(output).toMatch(
        new RegExp(
          `^cannot reach PostgreSQL at postgres://app:\\*\\*\\*@127\\.0\\.0\\.1:${port}/app: .*ECONNREFUSED`,
          'm',
        ),
      );
      expect(output).not.toContain('s3cret-pw');
      expect(output).not.toContain('is running');
    },
    CEILING_MS,
  );

  it(
    'a DATABASE_URL whose host does not resolve: names the host',
    async () => {
      const { output, exitCode } = await refused({
        STORAGE_BACKEND: 'postgresql',
        DATABASE_URL: 'postgres://app@db.does-not-exist.invalid:5432/app',
      });
      expect(exitCode).toBe(1);
      expect(output).toMatch(/^cannot reach PostgreSQL at .*: host "db\.does-not-exist\.invalid" /m);
    },
    CEILING_MS,
  );

  it.skipIf(skipUnmigrated)(
    `a schema without the tables: says to run the migrations${skipUnmigrated ? ` — SKIPPED: ${noPostgres}` : ''}`,
    async () => {
      const { output, exitCode } = await refused({
        STORAGE_BACKEND: 'postgresql',
        DATABASE_URL: testDatabaseUrl(),
        POSTGRES_SCHEMA: `kst_never_migrated_${randomBytes(4).toString('hex')}`,
      });
      expect(exitCode).toBe(1);
      expect(output).toMatch(/^cannot reach PostgreSQL at .*not migrated.*npm run migrate:schema/m);
    },
    CEILING_MS,
  );

  it(
    'STORAGE_BACKEND=memory: says why, and to use the embedded default',
    async () => {
      const { output, exitCode } = await refused({ STORAGE_BACKEND: 'memory' });
      expect(exitCode).toBe(1);
      expect(output).toMatch(/^STORAGE_BACKEND=memory is refused: .*own worker.*embedded PostgreSQL/m);
      expect(output.trim().split('\n')).toHaveLength(1);
    },
    CEILING_MS,
  );
});
