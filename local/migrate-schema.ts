/**
 * `npm run migrate:schema`: applies the pending files of migrations/ to the PostgreSQL schema the
 * environment names, as the backend would with `postgresql.migrate: true`.
 *
 *   DATABASE_URL     postgres://user:password@host:5432/database (required for pg and neon)
 *   POSTGRES_DRIVER  pg (default) | neon | pglite
 *   POSTGRES_SCHEMA  the schema (default kubently); created when missing
 *   NEON_WS_PROXY    neon driver: a WebSocket proxy (host:port/v1), e.g. local/neon-proxy.ts
 *
 * `npm run migrate:schema -- --status` prints the schema's version and pending files, changing nothing.
 * Exits 0 when the schema is (or already was) at the newest version, 1 on any error.
 */
import { configFromEnv, type StorageConfig } from '../lib/config/index.js';
import { ConfigError, StorageError } from '../lib/errors.js';
import { applySchemaMigrations, schemaMigrationStatus } from '../lib/storage/postgresql/schema-migrations.js';
import { createSql, mapSqlError, type Sql } from '../lib/storage/postgresql/sql.js';

const USAGE = `usage: npm run migrate:schema [-- --status]

Applies migrations/ to the schema POSTGRES_SCHEMA (default kubently) of DATABASE_URL.
  --status  print the schema's version and pending migrations; change nothing`;

/** Which environment variable sets each postgresql field, so a problem names what to change. */
const ENV_OF: Record<string, string> = {
  'postgresql.url': 'DATABASE_URL',
  'postgresql.driver': 'POSTGRES_DRIVER',
  'postgresql.schema': 'POSTGRES_SCHEMA',
  'postgresql.wsProxy': 'NEON_WS_PROXY',
};

async function main(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const unknown = args.filter((a) => a !== '--status');
  if (unknown.length > 0) {
    console.error(`migrate:schema: unknown argument ${unknown[0]}\n${USAGE}`);
    return 2;
  }
  const statusOnly = args.includes('--status');

  let config: StorageConfig['postgresql'];
  try {
    // The backend is PostgreSQL whatever STORAGE_BACKEND says. Migrations may build indexes on
    // big tables: statements get the longest timeout there is, and no LISTEN connection.
    const { STORAGE_BACKEND: _ignored, ...env } = process.env;
    config = configFromEnv(env, {
      backend: 'postgresql',
      postgresql: { listen: false, commandTimeout: 600 },
    }).postgresql;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error('migrate:schema: invalid configuration:');
    for (const problem of error.problems) {
      const field = problem.slice(0, problem.indexOf(':'));
      const variable = ENV_OF[field];
      const hint = variable !== undefined && !problem.includes(variable) ? ` (set by ${variable})` : '';
      console.error(`  - ${problem}${hint}`);
    }
    return 1;
  }

  const schema = config.schema;
  const label = `schema ${JSON.stringify(schema)}`;
  let sql: Sql | undefined;
  try {
    sql = await createSql(config);
    if (statusOnly) {
      const status = await schemaMigrationStatus(sql, { schema });
      const state = status.pending.length === 0 ? 'up to date' : `${status.pending.length} pending`;
      console.log(`${label} at version ${status.version} (${state})`);
      for (const m of status.pending) console.log(`  pending  ${m.file}`);
      for (const m of status.changed) console.log(`  CHANGED  ${m.file} (differs from what was applied)`);
      return status.changed.length > 0 ? 1 : 0;
    }
    const result = await applySchemaMigrations(sql, { schema });
    for (const m of result.applied) console.log(`applied ${m.file}`);
    console.log(
      result.applied.length === 0
        ? `${label} is up to date at version ${result.version}`
        : `${label} at version ${result.version} (${result.applied.length} applied)`,
    );
    return 0;
  } catch (error) {
    console.error(`migrate:schema: ${describe(error)}`);
    return 1;
  } finally {
    await sql?.close().catch(() => {});
  }
}

/** One line for the errors this tool expects (no stack trace); the full error for a bug. */
function describe(error: unknown): string {
  const state = (error as { code?: unknown } | null)?.code;
  // A refusal from the server says it best itself (mapSqlError would read an undefined table or
  // function as "run migrations", which is what this tool is doing).
  if (error instanceof Error && typeof state === 'string' && /^[0-9A-Z]{5}$/.test(state)) {
    return oneLine(`${error.message} (SQLSTATE ${state})`);
  }
  const mapped = mapSqlError(error);
  if (mapped instanceof StorageError) return oneLine(mapped.message);
  if (mapped instanceof ConfigError) return `invalid configuration: ${mapped.problems.join('; ')}`;
  if (mapped instanceof Error) return mapped.stack ?? mapped.message;
  return String(mapped);
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ');

process.exit(await main(process.argv.slice(2)));
