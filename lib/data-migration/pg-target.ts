import { quoteIdent, type Sql, type SqlExecutor } from '../storage/postgresql/sql.js';
import { checkTargetSchema } from './pg-target/check.js';
import { fetchRecords, scanRecords } from './pg-target/reads.js';
import { rowToRecord } from './pg-target/rows.js';
import { storeSelects } from './pg-target/selects.js';
import { type ChannelCounter, removeRecords, writeRecords } from './pg-target/writes.js';
import { type AuditRecord, pairId, type RecordOf, STORES, type StoreName } from './records.js';
import { type Cursor, isCursor } from './source.js';

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
    check: (): Promise<void> => checkTargetSchema(sql, options),

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
    remove: (store: StoreName, ids: string[]): Promise<void> => removeRecords(sql, table, store, ids),

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
    fetch: <S extends StoreName>(store: S, ids: string[]): Promise<(RecordOf[S] | undefined)[]> =>
      fetchRecords(sql, SELECT[store], store, ids),

    /** Every live item of a store, in keyset order, `batchSize` at a time. */
    scan: <S extends StoreName>(store: S, batchSize: number): AsyncIterable<RecordOf[S][]> =>
      scanRecords(sql, SELECT[store], store, batchSize),

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
