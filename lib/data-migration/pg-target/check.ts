/** Whether the target schema is ready for a copy: reachable, and every schema migration applied as released. */
import {
  type SchemaMigrationStatus,
  schemaMigrationStatus,
} from '../../storage/postgresql/schema-migrations.js';
import type { Sql } from '../../storage/postgresql/sql.js';
import { DataMigrationInputError } from '../source.js';

/** Throws `DataMigrationInputError`, saying what to do, unless the schema has every migration applied. */
export async function checkTargetSchema(sql: Sql, options: { schema: string; name: string }): Promise<void> {
  let status: SchemaMigrationStatus;
  try {
    status = await schemaMigrationStatus(sql, { schema: options.schema });
  } catch (error) {
    throw new DataMigrationInputError(
      `cannot reach the target PostgreSQL at ${options.name}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  if (status.changed.length > 0) {
    throw new DataMigrationInputError(
      `the target schema ${options.schema} was migrated with a different ${status.changed[0]!.file}: fix the schema first`,
    );
  }
  if (status.pending.length > 0) {
    throw new DataMigrationInputError(
      status.version === 0
        ? `the target schema ${JSON.stringify(options.schema)} at ${options.name} has no tables: ` +
            `run \`npm run migrate:schema\` (DATABASE_URL and POSTGRES_SCHEMA pointing at it) first`
        : `the target schema ${JSON.stringify(options.schema)} is at version ${status.version}; ` +
            `${status.pending.map((m) => m.file).join(', ')} not applied: run \`npm run migrate:schema\` first`,
    );
  }
}
