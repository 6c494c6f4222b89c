/**
 * Writes migration records into the PostgreSQL backend's tables and reads them back. Every
 * batch is one multi-row statement per table (`unnest` of one array per column, so a batch of
 * any size is a fixed number of parameters), and the batch's checkpoint is written in the same
 * transaction: a copy killed at any moment has either all of a batch and the checkpoint past it,
 * or neither.
 *
 * Writes are upserts keyed by each store's own id, so a batch written twice (a resumed copy
 * re-reads a SCAN step; a re-run copies everything again) leaves one row per item, as the
 * source holds it. Audit entries are the exception (new ids here, see `records.ts`): the copy
 * never writes one twice because the checkpoint moves past them in the same transaction.
 */
import {
  type SchemaMigrationStatus,
  schemaMigrationStatus,
} from '../storage/postgresql/schema-migrations.js';
import { quoteIdent, type Sql, type SqlExecutor } from '../storage/postgresql/sql.js';
import { rowToRecord } from './pg-target/rows.js';
import { storeSelects } from './pg-target/selects.js';
import { type ChannelCounter, UUID, writeRecords } from './pg-target/writes.js';
import {
  type AuditRecord,
  idOf,
  pairId,
  type RecordOf,
  STORES,
  type StoreName,
  splitPairId,
} from './records.js';
import { type Cursor, DataMigrationInputError, isCursor } from './source.js';

const EMPTY_SIZES: Record<StoreName, number> = {
  kv: 0,
  sessions: 0,
  tokens: 0,
  connections: 0,
  queues: 0,
  dedup: 0,
  events: 0,
  audit: 0,
};

export interface Checkpoint {
  job: string;
  state: Cursor;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface PgTargetOptions {
  sql: Sql;
  schema: string;
  /** For messages: the URL without credentials. */
  name: string;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export type PgTarget = ReturnType<typeof createPgTarget>;

/** The checkpoint's position: JSON text as written by `saveCheckpoint`. */
function parseCursor(json: string): Cursor {
  const value: unknown = JSON.parse(json);
  if (!isCursor(value)) throw new Error(`a checkpoint holds no position: ${json}`);
  return value;
}

export function createPgTarget(options: PgTargetOptions) {
  const { sql } = options;
  const table = (name: string) => `${quoteIdent(options.schema)}.${quoteIdent(name)}`;
  const SELECT = storeSelects(table);

  async function saveCheckpoint(tx: SqlExecutor, job: string, state: Cursor, finished: boolean) {
    await tx.query(
      `INSERT INTO ${table('data_migrations')} (job, state, started_at, updated_at, finished_at)
       VALUES ($1, $2, now(), now(), CASE WHEN $3::boolean THEN now() END)
       ON CONFLICT (job) DO UPDATE SET state = EXCLUDED.state, updated_at = now(),
         finished_at = EXCLUDED.finished_at`,
      [job, JSON.stringify(state), finished],
    );
  }

  const target = {
    name: options.name,
    schema: options.schema,

    /** Throws `DataMigrationInputError` unless the schema has every migration applied. */
    async check(): Promise<void> {
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
    },

    /** Writes a batch and its checkpoint in one transaction. */
    async write<S extends StoreName>(
      store: S,
      records: RecordOf[S][],
      checkpoint: { job: string; state: Cursor } | undefined,
      counters?: ChannelCounter[],
    ): Promise<void> {
      await sql.transaction(async (tx) => {
        await writeRecords({ tx, table }, store, records, counters);
        if (checkpoint) await saveCheckpoint(tx, checkpoint.job, checkpoint.state, false);
      });
    },

    /** Deletes items by id (`idOf`): the copy's verification found them gone from the source. */
    async remove(store: StoreName, ids: string[]): Promise<void> {
      if (ids.length === 0) return;
      switch (store) {
        case 'kv':
          await sql.query(`DELETE FROM ${table('kv_store')} WHERE key = ANY($1::text[])`, [ids]);
          return;
        case 'sessions':
          await sql.query(`DELETE FROM ${table('sessions')} WHERE session_id = ANY($1::text[])`, [ids]);
          return;
        case 'tokens':
          await sql.query(`DELETE FROM ${table('tokens')} WHERE id = ANY($1::text[])`, [ids]);
          return;
        case 'connections':
          await sql.query(`DELETE FROM ${table('ws_connections')} WHERE connection_id = ANY($1::text[])`, [
            ids,
          ]);
          return;
        case 'queues':
          await sql.query(`DELETE FROM ${table('queues')} WHERE id = ANY($1::uuid[])`, [
            ids.map((id) => splitPairId(id)[1]).filter((id) => UUID.test(id)),
          ]);
          return;
        default:
          throw new Error(`${store}: items are not removed by a copy`);
      }
    },

    async loadCheckpoint(job: string): Promise<Checkpoint | undefined> {
      const [row] = await sql.query<{ state: string; s: Date; u: Date; f: Date | null }>(
        `SELECT state, started_at AS s, updated_at AS u, finished_at AS f FROM ${table('data_migrations')} WHERE job = $1`,
        [job],
      );
      if (!row) return undefined;
      return {
        job,
        state: parseCursor(row.state),
        startedAt: new Date(row.s).toISOString(),
        updatedAt: new Date(row.u).toISOString(),
        finishedAt: row.f === null ? null : new Date(row.f).toISOString(),
      };
    },

    async saveCheckpoint(job: string, state: Cursor, finished = false): Promise<void> {
      await saveCheckpoint(sql, job, state, finished);
    },

    async dropCheckpoint(job: string): Promise<void> {
      await sql.query(`DELETE FROM ${table('data_migrations')} WHERE job = $1`, [job]);
    },

    /** The live items with these ids (`idOf`), in the order of `ids`; undefined where there is none. */
    async fetch<S extends StoreName>(store: S, ids: string[]): Promise<(RecordOf[S] | undefined)[]> {
      if (ids.length === 0) return [];
      const s = SELECT[store];
      let where: string;
      let params: unknown[];
      switch (store) {
        case 'dedup':
        case 'events': {
          const parts = ids.map(splitPairId);
          const col = store === 'dedup' ? 'dedup_id' : 'id';
          where = `(${store === 'events' ? 'x.channel, x.id' : 'queue, dedup_id'}) IN (SELECT * FROM unnest($1::text[], $2::${store === 'events' ? 'bigint' : 'text'}[]))`;
          params = [parts.map((p) => p[0]), parts.map((p) => (col === 'id' ? Number(p[1]) : p[1]))];
          break;
        }
        case 'queues': {
          const valid = ids.map((id) => splitPairId(id)[1]).filter((id) => UUID.test(id));
          where = 'id = ANY($1::uuid[])';
          params = [valid];
          break;
        }
        case 'audit':
          throw new Error('audit entries are matched by content, not fetched by id');
        default:
          where = `${s.key} = ANY($1::text[])`;
          params = [ids];
      }
      const rows = await sql.query(`SELECT ${s.cols} FROM ${s.from} WHERE ${where} AND ${s.live}`, params);
      const byId = new Map<string, RecordOf[S]>();
      for (const row of rows) {
        const record = rowToRecord(store, row);
        byId.set(idOf(store, record), record);
      }
      return ids.map((id) => byId.get(id));
    },

    /** Every live item of a store, in keyset order, `batchSize` at a time. */
    async *scan<S extends StoreName>(store: S, batchSize: number): AsyncIterable<RecordOf[S][]> {
      const s = SELECT[store];
      let after: unknown[] | undefined;
      for (;;) {
        const keyCols = s.key.replace(/^\(|\)$/g, '');
        const n = keyCols.split(',').length;
        const params: unknown[] = [batchSize];
        let where = s.live;
        if (after) {
          const placeholders = after.map((_, i) => `$${i + 2}`).join(', ');
          where += ` AND (${keyCols}) > (${placeholders})`;
          params.push(...after);
        }
        const rows = await sql.query(
          `SELECT ${s.cols}, ${keyCols
            .split(',')
            .map((c, i) => `${c.trim()} AS k${i}`)
            .join(', ')} FROM ${s.from} WHERE ${where} ORDER BY ${keyCols} LIMIT $1`,
          params,
        );
        if (rows.length === 0) return;
        yield rows.map((row) => rowToRecord(store, row));
        const last = rows[rows.length - 1]!;
        after = Array.from({ length: n }, (_, i) => last[`k${i}`]);
        if (rows.length < batchSize) return;
      }
    },

    /** Live items of a store. */
    async count(store: StoreName): Promise<number> {
      const s = SELECT[store];
      const [row] = await sql.query<{ n: string }>(`SELECT count(*) AS n FROM ${s.from} WHERE ${s.live}`);
      return Number(row?.n ?? 0);
    },

    /** Audit entries with `at` in [fromMs, toMs), oldest first. */
    async auditBetween(fromMs: number, toMs: number): Promise<AuditRecord[]> {
      const s = SELECT.audit;
      const rows = await sql.query(
        `SELECT ${s.cols} FROM ${s.from} WHERE at >= $1::timestamptz AND at < $2::timestamptz ORDER BY id`,
        [iso(fromMs), iso(toMs)],
      );
      return rows.map((row) => rowToRecord('audit', row));
    },

    /** Live rows of the tables a store writes, for `--dry-run` reports and the summary. */
    async sizes(): Promise<Record<StoreName, number>> {
      const sizes: Partial<Record<StoreName, number>> = {};
      for (const store of STORES) sizes[store] = await target.count(store);
      return { ...EMPTY_SIZES, ...sizes };
    },

    async close(): Promise<void> {
      await sql.close();
    },
  };
  return target;
}

export { pairId };
