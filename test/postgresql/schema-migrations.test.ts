/**
 * The migration runner against a real PostgreSQL (and once against PGlite): files applied in
 * numeric order, each once, in its own transaction, into the target schema; two runners at once;
 * a failing file leaves nothing behind; a changed file is refused; odd schema names; the CLI.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { resolveConfig, type StorageConfig } from '../../lib/config/index.js';
import type { BackendUnavailableError } from '../../lib/errors.js';
import {
  applySchemaMigrations,
  loadSchemaMigrations,
  MIGRATIONS_DIR,
  type SchemaMigration,
  SchemaMigrationError,
  schemaMigrationStatus,
} from '../../lib/storage/postgresql/schema-migrations.js';
import { createSql, quoteIdent, type Sql, withErrorMapping } from '../../lib/storage/postgresql/sql.js';
import { postgresBackend, testDatabaseUrl } from '../support/backends.js';
import { failure } from '../support/helpers.js';

const DB_URL = testDatabaseUrl();
const unavailable = await postgresBackend({ name: 'postgresql-pg', driver: 'pg' }).available();
if (unavailable && process.env.CI) throw new Error(`PostgreSQL is required under CI: ${unavailable}`);
if (unavailable)
  console.warn(
    `\n⚠ test/postgresql/schema-migrations SKIPPED: ${unavailable} (install and start PostgreSQL, or set DATABASE_URL)\n`,
  );

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const run = randomBytes(3).toString('hex');
let counter = 0;

const pgConfig = (overrides: Partial<StorageConfig['postgresql']> = {}): StorageConfig['postgresql'] => ({
  ...resolveConfig({}).postgresql,
  driver: 'pg',
  url: DB_URL,
  listen: false,
  ...overrides,
});

/** A folder of migration files for one test, removed when it ends. */
async function migrationsDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kst-mig-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  await writeFiles(dir, files);
  return dir;
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
}

/** A small non-idempotent set: `log` gets one row per file that ran. */
const LOGGED = {
  '0001_log.sql':
    'CREATE TABLE log (n int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());\nINSERT INTO log (n) VALUES (1);\n',
  '0002_second.sql': 'INSERT INTO log (n) VALUES (2);\n',
  // 9 before 10 although "00010" sorts before "0009" as text.
  '0009_ninth.sql': 'CREATE TABLE ninth (x int);\nINSERT INTO log (n) VALUES (9);\n',
  '00010_tenth.sql': 'ALTER TABLE ninth ADD COLUMN y int;\nINSERT INTO log (n) VALUES (10);\n',
  'README.md': 'Not a migration; SELECT nonsense;\n',
};

describe('loadSchemaMigrations', () => {
  it('reads NNNN_name.sql files in numeric order, ignoring other files', async () => {
    const dir = await migrationsDir(LOGGED);
    await mkdir(join(dir, '0003_folder.sql'));
    const migrations = await loadSchemaMigrations(dir);
    expect(migrations.map((m) => [m.version, m.name, m.file])).toEqual([
      [1, 'log', '0001_log.sql'],
      [2, 'second', '0002_second.sql'],
      [9, 'ninth', '0009_ninth.sql'],
      [10, 'tenth', '00010_tenth.sql'],
    ]);
    expect(migrations[1]?.sql).toBe(LOGGED['0002_second.sql']);
    expect(migrations[1]?.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses two files with one number, and a .sql file without a number', async () => {
    const twice = await migrationsDir({ '0001_a.sql': 'SELECT 1;', '0002_b.sql': '', '0002_c.sql': '' });
    const error = await failure(() => loadSchemaMigrations(twice));
    expect(error).toBeInstanceOf(SchemaMigrationError);
    expect((error as Error).message).toMatch(/0002_b\.sql and 0002_c\.sql have the same number/);

    const unnumbered = await migrationsDir({ '0001_a.sql': 'SELECT 1;', 'seed.sql': '' });
    expect(((await failure(() => loadSchemaMigrations(unnumbered))) as Error).message).toMatch(/seed\.sql/);
  });

  it('a missing folder is a SchemaMigrationError naming it; an empty one has no migrations', async () => {
    const dir = await migrationsDir({});
    expect(await loadSchemaMigrations(dir)).toEqual([]);
    const error = await failure(() => loadSchemaMigrations(join(dir, 'nope')));
    expect(error).toBeInstanceOf(SchemaMigrationError);
    expect((error as Error).message).toContain(join(dir, 'nope'));
  });

  it('the checksum ignores CRLF line endings', async () => {
    const dir = await migrationsDir({ '0001_a.sql': 'SELECT 1;\nSELECT 2;\n' });
    const crlf = await migrationsDir({ '0001_a.sql': 'SELECT 1;\r\nSELECT 2;\r\n' });
    const [[lf], [cr]] = await Promise.all([loadSchemaMigrations(dir), loadSchemaMigrations(crlf)]);
    expect(cr?.checksum).toBe(lf?.checksum);
  });
});

describe.skipIf(unavailable !== undefined)(
  `migrations on PostgreSQL${unavailable ? ` — SKIPPED: ${unavailable}` : ''}`,
  () => {
    let admin: Sql;
    const created = new Set<string>();

    /** A schema name of this test's own, dropped when the test ends. */
    function schemaName(base = 'kst_mig'): string {
      const schema = `${base}_${run}_${counter++}`;
      created.add(schema);
      onTestFinished(async () => {
        await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
        created.delete(schema);
      });
      return schema;
    }
    async function newSql(): Promise<Sql> {
      const sql = await createSql(pgConfig());
      onTestFinished(() => sql.close());
      return sql;
    }
    const records = (schema: string) =>
      admin.query<{ version: number; name: string; checksum: string }>(
        `SELECT version, name, checksum FROM ${quoteIdent(schema)}.schema_migrations ORDER BY version`,
      );
    const logged = async (schema: string) =>
      (await admin.query<{ n: number }>(`SELECT n FROM ${quoteIdent(schema)}.log ORDER BY at, n`)).map(
        (r) => r.n,
      );
    const tableExists = async (qualified: string) =>
      (await admin.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [qualified]))[0]?.t !=
      null;
    beforeAll(async () => {
      admin = await createSql(pgConfig());
    });
    afterAll(async () => {
      // Schemas of tests that did not get to clean up after themselves.
      for (const schema of created) await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
      await admin.close();
    });

    it('applies the files in numeric order into the schema and records each; a second run applies nothing', async () => {
      const sql = await newSql();
      const schema = schemaName();
      const dir = await migrationsDir(LOGGED);
      const migrations = await loadSchemaMigrations(dir);

      const first = await applySchemaMigrations(sql, { schema, dir });
      expect(files(first.applied)).toEqual([
        '0001_log.sql',
        '0002_second.sql',
        '0009_ninth.sql',
        '00010_tenth.sql',
      ]);
      expect(first.version).toBe(10);
      expect(await logged(schema)).toEqual([1, 2, 9, 10]);
      expect(await records(schema)).toEqual(
        migrations.map((m) => ({ version: m.version, name: m.name, checksum: m.checksum })),
      );
      // Unqualified names land in the target schema, nowhere else.
      expect(await tableExists(`${quoteIdent(schema)}.ninth`)).toBe(true);
      expect(await tableExists('public.ninth')).toBe(false);

      const second = await applySchemaMigrations(sql, { schema, dir });
      expect(second).toEqual({ applied: [], version: 10 });
      expect(await logged(schema)).toEqual([1, 2, 9, 10]);

      // A new file is all the next run applies.
      await writeFiles(dir, { '0011_more.sql': 'INSERT INTO log (n) VALUES (11);' });
      const third = await applySchemaMigrations(sql, { schema, dir });
      expect(files(third.applied)).toEqual(['0011_more.sql']);
      expect(third.version).toBe(11);
      expect(await logged(schema)).toEqual([1, 2, 9, 10, 11]);
      expect(await schemaMigrationStatus(sql, { schema, dir })).toEqual({
        version: 11,
        pending: [],
        changed: [],
      });
    });

    it('two runners started at once apply each file exactly once', async () => {
      const dir = await migrationsDir({
        '0001_log.sql':
          'CREATE TABLE log (n int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());\nINSERT INTO log (n) VALUES (1);',
        '0002_slow.sql': 'SELECT pg_sleep(0.2);\nINSERT INTO log (n) VALUES (2);',
        '0003_table.sql': 'CREATE TABLE third (x int);\nINSERT INTO log (n) VALUES (3);',
        '0004_last.sql': 'INSERT INTO log (n) VALUES (4);',
      });
      const migrations = await loadSchemaMigrations(dir);
      const [a, b] = await Promise.all([newSql(), newSql()]);
      // A few rounds, each on a fresh schema: the schema's creation races too.
      for (let round = 0; round < 3; round++) {
        const schema = schemaName();
        const [ra, rb] = await Promise.all([
          applySchemaMigrations(a, { schema, migrations }),
          applySchemaMigrations(b, { schema, migrations }),
        ]);
        expect(ra.version).toBe(4);
        expect(rb.version).toBe(4);
        expect([...files(ra.applied), ...files(rb.applied)].sort()).toEqual(files(migrations));
        expect(await logged(schema)).toEqual([1, 2, 3, 4]);
        expect((await records(schema)).map((r) => r.version)).toEqual([1, 2, 3, 4]);
      }
    });

    it('a failing file is rolled back whole, not recorded, and stops the run; the error names it', async () => {
      const sql = await newSql();
      const schema = schemaName();
      const dir = await migrationsDir({
        '0001_log.sql': LOGGED['0001_log.sql'],
        '0002_broken.sql':
          'CREATE TABLE partial (x int);\nINSERT INTO log (n) VALUES (2);\nSELECT * FROM no_such_table;\n',
        '0003_later.sql': 'CREATE TABLE later (x int);\nINSERT INTO log (n) VALUES (3);\n',
      });
      // Through the error mapping the backend uses: an undefined table in a file is the file's
      // fault, not "run migrations".
      const error = await failure(() =>
        applySchemaMigrations(withErrorMapping(sql, schema), { schema, dir }),
      );
      expect(error).toBeInstanceOf(SchemaMigrationError);
      expect((error as SchemaMigrationError).file).toBe('0002_broken.sql');
      expect((error as Error).message).toMatch(
        /migration 0002_broken\.sql failed at line 3: .*no_such_table/,
      );
      expect((error as Error).message).not.toMatch(/run migrations/);
      expect((error as BackendUnavailableError).retryable).toBe(false);

      expect((await records(schema)).map((r) => r.version)).toEqual([1]);
      expect(await logged(schema)).toEqual([1]);
      expect(await tableExists(`${quoteIdent(schema)}.partial`)).toBe(false);
      expect(await tableExists(`${quoteIdent(schema)}.later`)).toBe(false);
      expect(files((await schemaMigrationStatus(sql, { schema, dir })).pending)).toEqual([
        '0002_broken.sql',
        '0003_later.sql',
      ]);

      // An unapplied file may be fixed; the next run goes on from there.
      await writeFiles(dir, {
        '0002_broken.sql': 'CREATE TABLE partial (x int);\nINSERT INTO log (n) VALUES (2);\n',
      });
      const fixed = await applySchemaMigrations(sql, { schema, dir });
      expect(files(fixed.applied)).toEqual(['0002_broken.sql', '0003_later.sql']);
      expect(await logged(schema)).toEqual([1, 2, 3]);
    });

    it('a file changed after it was applied stops the runner before it applies anything', async () => {
      const sql = await newSql();
      const schema = schemaName();
      const dir = await migrationsDir({ '0001_log.sql': LOGGED['0001_log.sql'] });
      await applySchemaMigrations(sql, { schema, dir });

      await writeFiles(dir, {
        '0001_log.sql': LOGGED['0001_log.sql'].replace('VALUES (1)', 'VALUES (100)'),
        '0002_second.sql': LOGGED['0002_second.sql'],
      });
      const error = await failure(() => applySchemaMigrations(sql, { schema, dir }));
      expect(error).toBeInstanceOf(SchemaMigrationError);
      expect((error as Error).message).toMatch(/migration 0001_log\.sql was changed after it was applied/);
      expect((await records(schema)).map((r) => r.version)).toEqual([1]);
      expect(await logged(schema)).toEqual([1]);

      const status = await schemaMigrationStatus(sql, { schema, dir });
      expect(status.version).toBe(1);
      expect(files(status.changed)).toEqual(['0001_log.sql']);
      expect(files(status.pending)).toEqual(['0002_second.sql']);

      // The same text with CRLF line endings is no change.
      await writeFiles(dir, { '0001_log.sql': LOGGED['0001_log.sql'].replaceAll('\n', '\r\n') });
      expect(files((await applySchemaMigrations(sql, { schema, dir })).applied)).toEqual(['0002_second.sql']);
    });

    it('schemaMigrationStatus of a missing schema, or one without the table, is version 0 and creates nothing', async () => {
      const sql = await newSql();
      const schema = schemaName();
      const dir = await migrationsDir(LOGGED);
      const status = await schemaMigrationStatus(sql, { schema, dir });
      expect(status.version).toBe(0);
      expect(files(status.pending)).toEqual(files(await loadSchemaMigrations(dir)));
      expect(status.changed).toEqual([]);
      const exists = await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
      expect(exists).toEqual([]);

      await admin.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
      expect((await schemaMigrationStatus(sql, { schema, dir })).version).toBe(0);
      // An existing empty schema is migrated in place.
      expect((await applySchemaMigrations(sql, { schema, dir })).version).toBe(10);
    });

    it('quotes schema names with capitals, spaces, quotes and semicolons', async () => {
      const sql = await newSql();
      const dir = await migrationsDir(LOGGED);
      const capitals = schemaName('Kst_Mig_X');
      for (const schema of [capitals, schemaName('kst mig "q"; drop')]) {
        const result = await applySchemaMigrations(sql, { schema, dir });
        expect(result.version).toBe(10);
        expect(await logged(schema)).toEqual([1, 2, 9, 10]);
        const tables = await admin.query<{ table_name: string }>(
          'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
          [schema],
        );
        expect(tables.map((t) => t.table_name)).toEqual(['log', 'ninth', 'schema_migrations']);
        expect((await schemaMigrationStatus(sql, { schema, dir })).pending).toEqual([]);
      }
      // The capitalised name was not folded to lower case.
      const folded = await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [
        capitals.toLowerCase(),
      ]);
      expect(folded).toEqual([]);
    });

    it("applies the repository's migrations/ folder", async () => {
      const sql = await newSql();
      const schema = schemaName();
      const migrations = await loadSchemaMigrations(MIGRATIONS_DIR);
      const last = migrations.at(-1)?.version ?? 0;

      const result = await applySchemaMigrations(sql, { schema });
      expect(files(result.applied)).toEqual(files(migrations));
      expect(result.version).toBe(last);
      expect(await schemaMigrationStatus(sql, { schema })).toEqual({
        version: last,
        pending: [],
        changed: [],
      });
      expect(await applySchemaMigrations(sql, { schema })).toEqual({ applied: [], version: last });

      // Every table a file creates is in the schema.
      const tables = migrations.flatMap((m) =>
        [...m.sql.matchAll(/CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)/gi)].map(
          (x) => x[1]!,
        ),
      );
      for (const table of tables)
        expect(await tableExists(`${quoteIdent(schema)}.${table}`), table).toBe(true);
    });

    describe('npm run migrate:schema (local/migrate-schema.ts)', () => {
      /** Runs the CLI with only these storage variables set. */
      function cli(
        env: Record<string, string>,
        args: string[] = [],
      ): Promise<{ code: number; stdout: string; stderr: string }> {
        const base = { ...process.env };
        for (const name of [
          'DATABASE_URL',
          'POSTGRES_DRIVER',
          'POSTGRES_SCHEMA',
          'NEON_WS_PROXY',
          'STORAGE_BACKEND',
        ])
          delete base[name];
        return new Promise((resolve) => {
          execFile(
            TSX,
            ['local/migrate-schema.ts', ...args],
            { cwd: ROOT, env: { ...base, ...env } },
            (error, stdout, stderr) => {
              const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
              resolve({ code, stdout, stderr });
            },
          );
        });
      }

      it('applies pending migrations, then reports the schema up to date; --status changes nothing', async () => {
        const schema = schemaName();
        const migrations = await loadSchemaMigrations(MIGRATIONS_DIR);
        const last = migrations.at(-1)?.version ?? 0;
        // STORAGE_BACKEND is for the functions; migrate always means PostgreSQL.
        const env = { DATABASE_URL: DB_URL, POSTGRES_SCHEMA: schema, STORAGE_BACKEND: 'memory' };

        const status = await cli(env, ['--status']);
        expect(status.stderr).toBe('');
        expect(status.code).toBe(0);
        expect(status.stdout).toContain(`schema "${schema}" at version 0 (${migrations.length} pending)`);
        for (const m of migrations) expect(status.stdout).toContain(m.file);
        expect(await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).toEqual([]);

        const first = await cli(env);
        expect(first.stderr).toBe('');
        expect(first.code).toBe(0);
        expect(first.stdout.trim().split('\n')).toEqual([
          ...migrations.map((m) => `applied ${m.file}`),
          `schema "${schema}" at version ${last} (${migrations.length} applied)`,
        ]);
        expect((await records(schema)).map((r) => r.version)).toEqual(migrations.map((m) => m.version));

        const second = await cli(env);
        expect(second.code).toBe(0);
        expect(second.stdout.trim()).toBe(`schema "${schema}" is up to date at version ${last}`);
      });

      it('without DATABASE_URL: exit 1 with a message naming it, no stack trace', async () => {
        const result = await cli({});
        expect(result.code).toBe(1);
        expect(result.stdout).toBe('');
        expect(result.stderr).toMatch(/DATABASE_URL/);
        expect(result.stderr).not.toMatch(/\n\s+at /);
      });

      it('an unreachable server: exit 1 with one line, no stack trace', async () => {
        const result = await cli({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test' });
        expect(result.code).toBe(1);
        expect(result.stderr.trim().split('\n')).toHaveLength(1);
        expect(result.stderr).toMatch(/^migrate:schema: postgresql unavailable: .*ECONNREFUSED/);
      });
    });
  },
);

describe('migrations on PGlite', () => {
  let db: PGlite;
  let sql: Sql;
  beforeAll(async () => {
    db = await PGlite.create();
    sql = await createSql(
      { ...resolveConfig({}).postgresql, driver: 'pglite', listen: false },
      { pglite: { instance: db } },
    );
  });
  afterAll(async () => {
    await sql.close();
    await db.close();
  });

  it('applies in order once, also with two runners at once; a failing file leaves nothing', async () => {
    const schema = `kst_mig_${run}_pglite`;
    const dir = await migrationsDir(LOGGED);
    const migrations = await loadSchemaMigrations(dir);
    const [a, b] = await Promise.all([
      applySchemaMigrations(sql, { schema, dir }),
      applySchemaMigrations(sql, { schema, dir }),
    ]);
    expect([...files(a.applied), ...files(b.applied)].sort()).toEqual(files(migrations).sort());
    const rows = await sql.query<{ n: number }>(`SELECT n FROM ${quoteIdent(schema)}.log ORDER BY at, n`);
    expect(rows.map((r) => r.n)).toEqual([1, 2, 9, 10]);
    expect(await applySchemaMigrations(sql, { schema, dir })).toEqual({ applied: [], version: 10 });

    await writeFiles(dir, {
      '0011_broken.sql': 'CREATE TABLE partial (x int);\nSELECT * FROM no_such_table;',
    });
    const error = await failure(() => applySchemaMigrations(sql, { schema, dir }));
    expect((error as Error).message).toMatch(/migration 0011_broken\.sql failed/);
    const partial = await sql.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [
      `${quoteIdent(schema)}.partial`,
    ]);
    expect(partial[0]?.t).toBeNull();
    expect((await schemaMigrationStatus(sql, { schema, dir })).version).toBe(10);

    // The repository's migrations too, in a schema of their own.
    const real = `kst_mig_${run}_pglite_real`;
    const result = await applySchemaMigrations(sql, { schema: real });
    expect(result.applied.length).toBe((await loadSchemaMigrations()).length);
    expect((await schemaMigrationStatus(sql, { schema: real })).pending).toEqual([]);
  });
});

function files(migrations: SchemaMigration[]): string[] {
  return migrations.map((m) => m.file);
}
