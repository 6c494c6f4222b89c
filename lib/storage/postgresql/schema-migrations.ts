/**
 * The migration runner: applies `migrations/NNNN_name.sql` to one schema, each file once and in
 * version order, each in its own transaction, and records it in `<schema>.schema_migrations`.
 *
 * Files name their tables unqualified: each runs with `SET LOCAL search_path` to the target
 * schema (at migration time only; the backend always names the schema). Every transaction takes
 * a transaction-scoped advisory lock derived from the schema name and re-reads the records
 * under it, so any number of runners started at once (Lambda cold starts with
 * `postgresql.migrate: true`, a deploy's `npm run migrate:schema`) apply each file exactly once.
 *
 * A schema already at the newest version costs one statement and no lock. A file that was
 * changed after it was applied stops the runner before it applies anything.
 */
import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackendUnavailableError, ConfigError, StorageError } from '../../errors.js';
import { mapSqlError, quoteIdent, type Sql, type SqlExecutor } from './sql.js';

/** The repository's `migrations/` folder. */
export const MIGRATIONS_DIR: string = fileURLToPath(new URL('../../../migrations/', import.meta.url));

export interface SchemaMigration {
  /** The file's number: `0001_initial.sql` → 1. */
  version: number;
  /** The file's name between number and extension: `0001_initial.sql` → `initial`. */
  name: string;
  /** The file name, e.g. `0001_initial.sql` (what errors and the CLI show). */
  file: string;
  sql: string;
  /** SHA-256 (hex) of the text, line endings normalised to `\n` (a CRLF checkout is no change). */
  checksum: string;
}

export interface SchemaMigrationSource {
  /** The schema to migrate (created when missing); any name, always quoted. */
  schema: string;
  /** Folder of migration files; default `MIGRATIONS_DIR`. Ignored when `migrations` is given. */
  dir?: string;
  /** The migrations themselves, instead of reading `dir`. */
  migrations?: readonly SchemaMigration[];
}

export interface SchemaMigrationResult {
  /** What this call applied, in order (files another runner applied meanwhile are not listed). */
  applied: SchemaMigration[];
  /** The schema's version afterwards: the highest recorded version. */
  version: number;
}

export interface SchemaMigrationStatus {
  /** The highest recorded version; 0 when the schema or its migrations table does not exist. */
  version: number;
  /** Files not recorded yet, in the order `migrate` would apply them. */
  pending: SchemaMigration[];
  /** Applied files whose text differs from what was applied (`migrate` refuses to run). */
  changed: SchemaMigration[];
}

/**
 * A migration cannot be applied: a file failed (`file` names it; nothing of it was kept), was
 * changed after it was applied, or the folder is not usable. A `BackendUnavailableError`, so the
 * storage reports it as such when it migrates on first use; `retryable` only when the cause
 * was connection trouble.
 */
export class SchemaMigrationError extends BackendUnavailableError {
  constructor(
    message: string,
    readonly file?: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super('postgresql', message, { retryable: false, ...options });
  }
}

const MIGRATION_FILE = /^(\d{4,})_(.+)\.sql$/;
const MAX_VERSION = 2 ** 31 - 1;
/** SQLSTATEs of a missing schema (3F000) or table (42P01): nothing recorded yet. */
const MISSING_STATES = new Set(['3F000', '42P01']);

function checksumOf(text: string): string {
  return createHash('sha256').update(text.replaceAll('\r\n', '\n')).digest('hex');
}

/** The migrations in `dir` (files `NNNN_name.sql`; other files are ignored), sorted by version. */
export async function loadSchemaMigrations(dir: string = MIGRATIONS_DIR): Promise<SchemaMigration[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new SchemaMigrationError(`no migrations folder at ${dir}`, undefined, { cause: error });
    }
    throw error;
  }
  const migrations: SchemaMigration[] = [];
  for (const entry of entries) {
    if (!entry.isFile() && !entry.isSymbolicLink()) continue;
    const match = MIGRATION_FILE.exec(entry.name);
    if (match === null) {
      // A .sql file the runner would silently skip is a mistake waiting to happen.
      if (/\.sql$/i.test(entry.name)) {
        throw new SchemaMigrationError(
          `${entry.name} in ${dir} is not a migration name: name it NNNN_name.sql (e.g. 0002_add_index.sql)`,
          entry.name,
        );
      }
      continue;
    }
    let text = await readFile(join(dir, entry.name), 'utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    migrations.push({
      version: Number(match[1]),
      name: match[2]!,
      file: entry.name,
      sql: text,
      checksum: checksumOf(text),
    });
  }
  return inOrder(migrations);
}

/** Sorted by version; refuses versions out of range and two files with one number. */
function inOrder(migrations: readonly SchemaMigration[]): SchemaMigration[] {
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  for (const [i, migration] of sorted.entries()) {
    if (
      !Number.isSafeInteger(migration.version) ||
      migration.version < 1 ||
      migration.version > MAX_VERSION
    ) {
      throw new SchemaMigrationError(
        `migration ${migration.file}: the number must be 1 to ${MAX_VERSION}`,
        migration.file,
      );
    }
    const previous = sorted[i - 1];
    if (previous !== undefined && previous.version === migration.version) {
      throw new SchemaMigrationError(
        `migrations ${previous.file} and ${migration.file} have the same number: renumber one of them`,
        migration.file,
      );
    }
  }
  return sorted;
}

function checkSchema(schema: string): string {
  if (typeof schema !== 'string' || schema === '' || schema.includes('\0')) {
    throw new ConfigError(['postgresql.schema: expected a non-empty schema name']);
  }
  // Postgres truncates longer identifiers silently: the runner and the backend would disagree.
  if (Buffer.byteLength(schema) > 63) {
    throw new ConfigError(['postgresql.schema: a schema name is at most 63 bytes']);
  }
  return schema;
}

async function migrationsOf(source: SchemaMigrationSource): Promise<SchemaMigration[]> {
  return source.migrations !== undefined ? inOrder(source.migrations) : loadSchemaMigrations(source.dir);
}

interface Recorded {
  name: string;
  checksum: string;
}

const migrationsTable = (schema: string) => `${quoteIdent(schema)}.schema_migrations`;

function readRecords(run: SqlExecutor, schema: string): Promise<Map<number, Recorded>> {
  return run
    .query<{ version: number; name: string; checksum: string }>(
      `SELECT version::int4 AS version, name, checksum FROM ${migrationsTable(schema)} ORDER BY version`,
    )
    .then((rows) => new Map(rows.map((r) => [Number(r.version), { name: r.name, checksum: r.checksum }])));
}

/** The records, or undefined when the schema or its migrations table does not exist. */
async function recordsIfAny(sql: Sql, schema: string): Promise<Map<number, Recorded> | undefined> {
  try {
    return await readRecords(sql, schema);
  } catch (error) {
    const state = sqlState(driverError(error));
    if (state !== undefined && MISSING_STATES.has(state)) return undefined;
    if (state === '42703') {
      throw new SchemaMigrationError(
        `${migrationsTable(schema)} exists but was not made by this runner (another tool's table?): use another schema`,
        undefined,
        { cause: error },
      );
    }
    throw error;
  }
}

const highest = (records: Map<number, Recorded>) => Math.max(0, ...records.keys());

function checkUnchanged(migration: SchemaMigration, recorded: Recorded | undefined): void {
  if (recorded === undefined || recorded.checksum === migration.checksum) return;
  const renamed =
    recorded.name === migration.name ? '' : `, applied under the name ${JSON.stringify(recorded.name)}`;
  throw new SchemaMigrationError(
    `migration ${migration.file} was changed after it was applied (checksum applied ${recorded.checksum.slice(0, 12)}…, ` +
      `file now ${migration.checksum.slice(0, 12)}…${renamed}): restore the file and put the change in a new migration`,
    migration.file,
  );
}

/**
 * Starts a migration transaction: READ COMMITTED (so each statement after the lock sees what
 * the lock's previous holder committed, whatever the database's default isolation), then the
 * schema's advisory lock, held until commit or rollback.
 */
async function lockSchema(tx: SqlExecutor, schema: string): Promise<void> {
  await tx.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
  await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('kubently-storage:' || $1::text, 0))`, [
    schema,
  ]);
}

/**
 * Applies the pending migrations, in order, each in its own transaction. Throws
 * `SchemaMigrationError` when a file fails (rolled back whole: nothing of it kept, later files not
 * tried) or an applied file was changed; connection errors come as the `Sql` reports them.
 */
export async function applySchemaMigrations(
  sql: Sql,
  options: SchemaMigrationSource,
): Promise<SchemaMigrationResult> {
  const schema = checkSchema(options.schema);
  const migrations = await migrationsOf(options);
  const table = migrationsTable(schema);

  // Nothing to do is the common case (every cold start that migrates): one read, no lock.
  const current = await recordsIfAny(sql, schema);
  if (current !== undefined) {
    for (const m of migrations) checkUnchanged(m, current.get(m.version));
    if (migrations.every((m) => current.has(m.version))) return { applied: [], version: highest(current) };
  }

  // Under the lock: concurrent `CREATE SCHEMA IF NOT EXISTS` can still fail on a unique index.
  // An existing schema is not created again, so a role without CREATE on the database can
  // migrate a schema it was given.
  const recorded = await sql.transaction(async (tx) => {
    await lockSchema(tx, schema);
    const [exists] = await tx.query('SELECT 1 AS one FROM pg_catalog.pg_namespace WHERE nspname = $1', [
      schema,
    ]);
    if (exists === undefined) await tx.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS ${table} (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        checksum   text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`,
    );
    return readRecords(tx, schema);
  });
  for (const m of migrations) checkUnchanged(m, recorded.get(m.version));

  const applied: SchemaMigration[] = [];
  let version = highest(recorded);
  for (const migration of migrations) {
    if (recorded.has(migration.version)) continue;
    const ran = await sql.transaction(async (tx) => {
      await lockSchema(tx, schema);
      // Another runner may have applied it since the records above were read.
      const [row] = await tx.query<{ name: string; checksum: string }>(
        `SELECT name, checksum FROM ${table} WHERE version = $1`,
        [migration.version],
      );
      if (row !== undefined) {
        checkUnchanged(migration, row);
        return false;
      }
      await tx.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
      await tx.script(migration.sql).catch((error: unknown) => {
        throw fileFailed(migration, error);
      });
      await tx.query(`INSERT INTO ${table} (version, name, checksum) VALUES ($1, $2, $3)`, [
        migration.version,
        migration.name,
        migration.checksum,
      ]);
      return true;
    });
    if (ran) applied.push(migration);
    version = Math.max(version, migration.version);
  }
  return { applied, version };
}

/** Where `schema` stands against the migrations, without changing anything. */
export async function schemaMigrationStatus(
  sql: Sql,
  options: SchemaMigrationSource,
): Promise<SchemaMigrationStatus> {
  const schema = checkSchema(options.schema);
  const migrations = await migrationsOf(options);
  const recorded = (await recordsIfAny(sql, schema)) ?? new Map<number, Recorded>();
  return {
    version: highest(recorded),
    pending: migrations.filter((m) => !recorded.has(m.version)),
    changed: migrations.filter((m) => {
      const stored = recorded.get(m.version);
      return stored !== undefined && stored.checksum !== m.checksum;
    }),
  };
}

// ---------------------------------------------------------------------------------------
// errors

/** The driver's own error under any typed wrapping (an error-mapped `Sql` wraps it as `cause`). */
function driverError(error: unknown): unknown {
  let current = error;
  while (current instanceof StorageError && current.cause !== undefined) current = current.cause;
  return current;
}

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** A file's failure, naming the file, the statement's line when the server says where, and the SQLSTATE. */
function fileFailed(migration: SchemaMigration, error: unknown): SchemaMigrationError {
  const cause = driverError(error);
  const state = sqlState(cause);
  const message = cause instanceof Error ? cause.message : String(cause);
  const position = Number((cause as { position?: unknown } | null | undefined)?.position);
  const line =
    Number.isInteger(position) && position > 0
      ? migration.sql.slice(0, position - 1).split('\n').length
      : undefined;
  const mapped = mapSqlError(cause);
  const retryable = mapped instanceof BackendUnavailableError && mapped.retryable;
  return new SchemaMigrationError(
    `migration ${migration.file} failed${line === undefined ? '' : ` at line ${line}`}: ${message}` +
      (state === undefined ? '' : ` (SQLSTATE ${state})`),
    migration.file,
    { cause: error, retryable },
  );
}
