/** Reading the target's live items back: by id (verification, validate) and all in keyset order (validate). */
import type { Sql } from '../../storage/postgresql/sql.js';
import { idOf, type RecordOf, type StoreName, splitPairId } from '../records.js';
import { rowToRecord } from './rows.js';
import type { StoreSelect } from './selects.js';
import { UUID } from './writes.js';

/** The live items with these ids (`idOf`), in the order of `ids`; undefined where there is none. */
export async function fetchRecords<S extends StoreName>(
  sql: Sql,
  select: StoreSelect,
  store: S,
  ids: string[],
): Promise<(RecordOf[S] | undefined)[]> {
  if (ids.length === 0) return [];
  const s = select;
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
}

/** Every live item of a store, in keyset order, `batchSize` at a time. */
export async function* scanRecords<S extends StoreName>(
  sql: Sql,
  select: StoreSelect,
  store: S,
  batchSize: number,
): AsyncIterable<RecordOf[S][]> {
  const s = select;
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
}
