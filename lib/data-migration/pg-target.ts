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
import { schemaMigrationStatus } from '../storage/postgresql/schema-migrations.js';
import { quoteIdent, type Sql, type SqlExecutor } from '../storage/postgresql/sql.js';
import {
  type AuditRecord,
  type ConnectionRecord,
  type DedupRecord,
  type EventRecord,
  idOf,
  type KvRecord,
  pairId,
  type QueueMessageRecord,
  RESERVED_KV_PREFIX,
  RESERVED_QUEUES,
  type RecordOf,
  type SessionRecord,
  type StoreName,
  splitPairId,
  type TokenRecord,
} from './records.js';
import { type Cursor, DataMigrationInputError } from './source.js';

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
const msOf = (column: string) => `round(extract(epoch from ${column}) * 1000)::float8`;
const LIVE = (column: string) => `(${column} IS NULL OR ${column} > now())`;
const RESERVED_LIST = [...RESERVED_QUEUES].map((q) => `'${q}'`).join(', ');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type PgTarget = ReturnType<typeof createPgTarget>;

export function createPgTarget(options: PgTargetOptions) {
  const { sql } = options;
  const t = (table: string) => `${quoteIdent(options.schema)}.${quoteIdent(table)}`;
  const num = (v: unknown) => Number(v);

  /** Keeps the last record of each id: one statement cannot upsert a row twice. */
  const lastOfEach = <S extends StoreName>(store: S, records: RecordOf[S][]): RecordOf[S][] => {
    const byId = new Map<string, RecordOf[S]>();
    for (const r of records) {
      const id = idOf(store, r);
      byId.delete(id);
      byId.set(id, r);
    }
    return [...byId.values()];
  };

  async function writeRecords<S extends StoreName>(
    tx: SqlExecutor,
    store: S,
    input: RecordOf[S][],
    counters: { channel: string; lastId: number }[] = [],
  ): Promise<void> {
    if (input.length === 0 && counters.length === 0) return;
    const records = store === 'audit' ? input : lastOfEach(store, input);
    switch (store) {
      case 'kv': {
        const rs = records as KvRecord[];
        await tx.query(
          `INSERT INTO ${t('kv_store')} (key, value, expires_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
          [rs.map((r) => r.key), rs.map((r) => r.value), rs.map((r) => iso(r.expiresAtMs))],
        );
        return;
      }
      case 'sessions': {
        const rs = records as SessionRecord[];
        await tx.query(
          `INSERT INTO ${t('sessions')} (session_id, cluster_id, user_id, correlation_id, service_identity, data,
             ttl_ms, created_at, last_activity, expires_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::bigint[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
           ON CONFLICT (session_id) DO UPDATE SET cluster_id = EXCLUDED.cluster_id, user_id = EXCLUDED.user_id,
             correlation_id = EXCLUDED.correlation_id, service_identity = EXCLUDED.service_identity,
             data = EXCLUDED.data, ttl_ms = EXCLUDED.ttl_ms, created_at = EXCLUDED.created_at,
             last_activity = EXCLUDED.last_activity, expires_at = EXCLUDED.expires_at`,
          [
            rs.map((r) => r.sessionId),
            rs.map((r) => r.clusterId),
            rs.map((r) => r.userId),
            rs.map((r) => r.correlationId),
            rs.map((r) => r.serviceIdentity),
            rs.map((r) => r.data),
            rs.map((r) => Math.max(1, Math.round(r.ttlMs))),
            rs.map((r) => iso(r.createdAtMs)),
            rs.map((r) => iso(r.lastActivityMs)),
            rs.map((r) => iso(r.expiresAtMs)),
          ],
        );
        return;
      }
      case 'tokens': {
        const rs = records as TokenRecord[];
        // A re-issued token keeps its hash under a new id only if the old id is gone first.
        await tx.query(
          `DELETE FROM ${t('tokens')} WHERE hash = ANY($1::text[]) AND NOT (id = ANY($2::text[]))`,
          [rs.map((r) => r.hash), rs.map((r) => r.id)],
        );
        await tx.query(
          `INSERT INTO ${t('tokens')} (id, hash, identity, scopes, resources, created_at, expires_at, issuer_id)
           SELECT id, hash, identity,
             ARRAY(SELECT json_array_elements_text(scopes::json)),
             ARRAY(SELECT json_array_elements_text(resources::json)), created_at, expires_at, issuer_id
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[],
             $8::text[])
             AS u(id, hash, identity, scopes, resources, created_at, expires_at, issuer_id)
           ON CONFLICT (id) DO UPDATE SET hash = EXCLUDED.hash, identity = EXCLUDED.identity,
             scopes = EXCLUDED.scopes, resources = EXCLUDED.resources, created_at = EXCLUDED.created_at,
             expires_at = EXCLUDED.expires_at, issuer_id = EXCLUDED.issuer_id`,
          [
            rs.map((r) => r.id),
            rs.map((r) => r.hash),
            rs.map((r) => r.identity),
            rs.map((r) => JSON.stringify(r.scopes)),
            rs.map((r) => JSON.stringify(r.resources)),
            rs.map((r) => iso(r.createdAtMs)),
            rs.map((r) => iso(r.expiresAtMs)),
            rs.map((r) => r.issuerId),
          ],
        );
        return;
      }
      case 'connections': {
        const rs = records as ConnectionRecord[];
        await tx.query(
          `INSERT INTO ${t('ws_connections')} (connection_id, identity, scopes, resources, token_id, token_expires_at,
             connected_at, expires_at)
           SELECT id, identity,
             ARRAY(SELECT json_array_elements_text(scopes::json)),
             ARRAY(SELECT json_array_elements_text(resources::json)), token_id, token_expires_at, connected_at, expires_at
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
             $7::timestamptz[], $8::timestamptz[])
             AS u(id, identity, scopes, resources, token_id, token_expires_at, connected_at, expires_at)
           ON CONFLICT (connection_id) DO UPDATE SET identity = EXCLUDED.identity, scopes = EXCLUDED.scopes,
             resources = EXCLUDED.resources, token_id = EXCLUDED.token_id,
             token_expires_at = EXCLUDED.token_expires_at, connected_at = EXCLUDED.connected_at,
             expires_at = EXCLUDED.expires_at`,
          [
            rs.map((r) => r.connectionId),
            rs.map((r) => r.identity),
            rs.map((r) => JSON.stringify(r.scopes)),
            rs.map((r) => JSON.stringify(r.resources)),
            rs.map((r) => r.tokenId),
            rs.map((r) => iso(r.tokenExpiresAtMs)),
            rs.map((r) => iso(r.connectedAtMs)),
            rs.map((r) => iso(r.expiresAtMs)),
          ],
        );
        const ids = rs.map((r) => r.connectionId);
        await tx.query(`DELETE FROM ${t('ws_subscriptions')} WHERE connection_id = ANY($1::text[])`, [ids]);
        const pairs = rs.flatMap((r) => r.channels.map((channel) => [channel, r.connectionId] as const));
        if (pairs.length > 0) {
          await tx.query(
            `INSERT INTO ${t('ws_subscriptions')} (channel, connection_id)
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING`,
            [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
          );
        }
        return;
      }
      case 'queues': {
        const rs = (records as QueueMessageRecord[]).filter((r) => UUID.test(r.id));
        if (rs.length === 0) return;
        // Inserted in the source's FIFO order: the target's sequence keeps it.
        await tx.query(
          `INSERT INTO ${t('queues')} (id, queue, payload, state, attempts, receipt, enqueued_at, visible_at, died_at)
           SELECT id, queue, payload, state, attempts, NULL, enqueued_at, visible_at, died_at
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[],
             $7::timestamptz[], $8::timestamptz[]) WITH ORDINALITY
             AS u(id, queue, payload, state, attempts, enqueued_at, visible_at, died_at, ord)
           ORDER BY ord
           ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload, state = EXCLUDED.state,
             attempts = EXCLUDED.attempts, receipt = NULL, visible_at = EXCLUDED.visible_at,
             died_at = EXCLUDED.died_at`,
          [
            rs.map((r) => r.id),
            rs.map((r) => r.queue),
            rs.map((r) => r.payload),
            rs.map((r) => r.state),
            rs.map((r) => r.attempts),
            rs.map((r) => iso(r.enqueuedAtMs)),
            rs.map((r) => iso(r.visibleAtMs)),
            rs.map((r) => iso(r.diedAtMs)),
          ],
        );
        return;
      }
      case 'dedup': {
        const rs = (records as DedupRecord[]).filter((r) => UUID.test(r.messageId));
        if (rs.length === 0) return;
        await tx.query(
          `INSERT INTO ${t('queue_dedup')} (queue, dedup_id, message_id, expires_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::timestamptz[])
           ON CONFLICT (queue, dedup_id) DO UPDATE SET message_id = EXCLUDED.message_id,
             expires_at = EXCLUDED.expires_at`,
          [
            rs.map((r) => r.queue),
            rs.map((r) => r.dedupId),
            rs.map((r) => r.messageId),
            rs.map((r) => iso(r.expiresAtMs)),
          ],
        );
        return;
      }
      case 'events': {
        const rs = records as EventRecord[];
        if (rs.length > 0) {
          await tx.query(
            `INSERT INTO ${t('events')} (channel, id, message, published_at)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[])
             ON CONFLICT (channel, id) DO UPDATE SET message = EXCLUDED.message, published_at = EXCLUDED.published_at`,
            [
              rs.map((r) => r.channel),
              rs.map((r) => r.id),
              rs.map((r) => r.message),
              rs.map((r) => iso(r.publishedAtMs)),
            ],
          );
        }
        // The channel's sequence continues after the source's last id (and never goes back).
        const last = new Map<string, number>();
        for (const r of rs) last.set(r.channel, Math.max(last.get(r.channel) ?? 0, r.id, r.channelLastId));
        for (const c of counters) last.set(c.channel, Math.max(last.get(c.channel) ?? 0, c.lastId));
        await tx.query(
          `INSERT INTO ${t('event_channels')} AS c (channel, last_id)
           SELECT * FROM unnest($1::text[], $2::bigint[])
           ON CONFLICT (channel) DO UPDATE SET last_id = GREATEST(c.last_id, EXCLUDED.last_id)`,
          [[...last.keys()], [...last.values()]],
        );
        return;
      }
      case 'audit': {
        const rs = records as AuditRecord[];
        // Appended in the source's order: the target's ids follow it.
        await tx.query(
          `INSERT INTO ${t('audit_log')} (at, identity, action, resource, correlation_id, outcome, details)
           SELECT at, identity, action, resource, correlation_id, outcome, details
           FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
             WITH ORDINALITY AS u(at, identity, action, resource, correlation_id, outcome, details, ord)
           ORDER BY ord`,
          [
            rs.map((r) => iso(r.atMs)),
            rs.map((r) => r.identity),
            rs.map((r) => r.action),
            rs.map((r) => r.resource),
            rs.map((r) => r.correlationId),
            rs.map((r) => r.outcome),
            rs.map((r) => r.details),
          ],
        );
        return;
      }
    }
  }

  async function saveCheckpoint(tx: SqlExecutor, job: string, state: Cursor, finished: boolean) {
    await tx.query(
      `INSERT INTO ${t('data_migrations')} (job, state, started_at, updated_at, finished_at)
       VALUES ($1, $2, now(), now(), CASE WHEN $3::boolean THEN now() END)
       ON CONFLICT (job) DO UPDATE SET state = EXCLUDED.state, updated_at = now(),
         finished_at = EXCLUDED.finished_at`,
      [job, JSON.stringify(state), finished],
    );
  }

  // -- reads --------------------------------------------------------------------------

  type Row = Record<string, unknown>;
  const toRecord: { [S in StoreName]: (r: Row) => RecordOf[S] } = {
    kv: (r) => ({
      key: r.key as string,
      value: r.value as string,
      expiresAtMs: r.e === null ? null : num(r.e),
    }),
    sessions: (r) => ({
      sessionId: r.session_id as string,
      clusterId: r.cluster_id as string,
      userId: r.user_id as string | null,
      correlationId: r.correlation_id as string | null,
      serviceIdentity: r.service_identity as string | null,
      data: r.data as string,
      ttlMs: num(r.ttl_ms),
      createdAtMs: num(r.c),
      lastActivityMs: num(r.l),
      expiresAtMs: num(r.e),
    }),
    tokens: (r) => ({
      id: r.id as string,
      hash: r.hash as string,
      identity: r.identity as string,
      scopes: r.scopes as string[],
      resources: r.resources as string[],
      createdAtMs: num(r.c),
      expiresAtMs: r.e === null ? null : num(r.e),
      issuerId: (r.issuer_id as string | null) ?? null,
    }),
    connections: (r) => ({
      connectionId: r.connection_id as string,
      identity: r.identity as string,
      scopes: r.scopes as string[],
      resources: r.resources as string[],
      tokenId: r.token_id as string,
      tokenExpiresAtMs: r.te === null ? null : num(r.te),
      connectedAtMs: num(r.c),
      expiresAtMs: num(r.e),
      channels: r.channels as string[],
    }),
    queues: (r) => ({
      queue: r.queue as string,
      id: r.id as string,
      payload: r.payload as string,
      state: r.state as QueueMessageRecord['state'],
      attempts: num(r.attempts),
      enqueuedAtMs: num(r.en),
      visibleAtMs: num(r.v),
      diedAtMs: r.d === null ? null : num(r.d),
      seq: num(r.seq),
    }),
    dedup: (r) => ({
      queue: r.queue as string,
      dedupId: r.dedup_id as string,
      messageId: r.message_id as string,
      expiresAtMs: num(r.e),
    }),
    events: (r) => ({
      channel: r.channel as string,
      id: num(r.id),
      message: r.message as string,
      publishedAtMs: num(r.p),
      channelLastId: num(r.last_id),
    }),
    audit: (r) => ({
      sourceId: String(r.id),
      atMs: num(r.at),
      identity: r.identity as string,
      action: r.action as string,
      resource: r.resource as string | null,
      correlationId: r.correlation_id as string | null,
      outcome: r.outcome as AuditRecord['outcome'],
      details: r.details as string | null,
    }),
  };

  /** SELECT list and FROM clause of each store's live rows; `k` is the keyset column(s). */
  const SELECT: Record<StoreName, { cols: string; from: string; live: string; key: string }> = {
    // The hybrid backend's own kv keys and journal queues are not data: never copied, never compared.
    kv: {
      cols: `key, value, ${msOf('expires_at')} AS e`,
      from: t('kv_store'),
      live: `${LIVE('expires_at')} AND NOT starts_with(key, '${RESERVED_KV_PREFIX}')`,
      key: 'key',
    },
    sessions: {
      cols: `session_id, cluster_id, user_id, correlation_id, service_identity, data, ttl_ms,
        ${msOf('created_at')} AS c, ${msOf('last_activity')} AS l, ${msOf('expires_at')} AS e`,
      from: t('sessions'),
      live: LIVE('expires_at'),
      key: 'session_id',
    },
    tokens: {
      cols: `id, hash, identity, scopes, resources, ${msOf('created_at')} AS c, ${msOf('expires_at')} AS e, issuer_id`,
      from: t('tokens'),
      live: LIVE('expires_at'),
      key: 'id',
    },
    connections: {
      cols: `connection_id, identity, scopes, resources, token_id, ${msOf('token_expires_at')} AS te,
        ${msOf('connected_at')} AS c, ${msOf('expires_at')} AS e,
        ARRAY(SELECT s.channel FROM ${t('ws_subscriptions')} s WHERE s.connection_id = x.connection_id ORDER BY s.channel) AS channels`,
      from: `${t('ws_connections')} x`,
      live: LIVE('expires_at'),
      key: 'connection_id',
    },
    queues: {
      cols: `id::text AS id, queue, payload, state, attempts, seq, ${msOf('enqueued_at')} AS en, ${msOf('visible_at')} AS v,
        ${msOf('died_at')} AS d`,
      from: t('queues'),
      live: `queue NOT IN (${RESERVED_LIST})`,
      key: 'id',
    },
    dedup: {
      cols: `queue, dedup_id, message_id::text AS message_id, ${msOf('expires_at')} AS e`,
      from: t('queue_dedup'),
      live: `${LIVE('expires_at')} AND queue NOT IN (${RESERVED_LIST})`,
      key: '(queue, dedup_id)',
    },
    events: {
      cols: `x.channel, x.id, x.message, ${msOf('x.published_at')} AS p,
        (SELECT c.last_id FROM ${t('event_channels')} c WHERE c.channel = x.channel) AS last_id`,
      from: `${t('events')} x`,
      live: 'true',
      key: '(x.channel, x.id)',
    },
    audit: {
      cols: `id, ${msOf('at')} AS at, identity, action, resource, correlation_id, outcome, details`,
      from: t('audit_log'),
      live: 'true',
      key: 'id',
    },
  };

  const target = {
    name: options.name,
    schema: options.schema,

    /** Throws `DataMigrationInputError` unless the schema has every migration applied. */
    async check(): Promise<void> {
      let status: Awaited<ReturnType<typeof schemaMigrationStatus>>;
      try {
        status = await schemaMigrationStatus(sql, { schema: options.schema });
      } catch (error) {
        throw new DataMigrationInputError(
          `cannot reach the target PostgreSQL at ${options.name}: ${(error as Error).message}`,
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
      counters?: { channel: string; lastId: number }[],
    ): Promise<void> {
      await sql.transaction(async (tx) => {
        await writeRecords(tx, store, records, counters);
        if (checkpoint) await saveCheckpoint(tx, checkpoint.job, checkpoint.state, false);
      });
    },

    /** Deletes items by id (`idOf`): the copy's verification found them gone from the source. */
    async remove(store: StoreName, ids: string[]): Promise<void> {
      if (ids.length === 0) return;
      switch (store) {
        case 'kv':
          await sql.query(`DELETE FROM ${t('kv_store')} WHERE key = ANY($1::text[])`, [ids]);
          return;
        case 'sessions':
          await sql.query(`DELETE FROM ${t('sessions')} WHERE session_id = ANY($1::text[])`, [ids]);
          return;
        case 'tokens':
          await sql.query(`DELETE FROM ${t('tokens')} WHERE id = ANY($1::text[])`, [ids]);
          return;
        case 'connections':
          await sql.query(`DELETE FROM ${t('ws_connections')} WHERE connection_id = ANY($1::text[])`, [ids]);
          return;
        case 'queues':
          await sql.query(`DELETE FROM ${t('queues')} WHERE id = ANY($1::uuid[])`, [
            ids.map((id) => splitPairId(id)[1]).filter((id) => UUID.test(id)),
          ]);
          return;
        default:
          throw new Error(`${store}: items are not removed by a copy`);
      }
    },

    async loadCheckpoint(job: string): Promise<Checkpoint | undefined> {
      const [row] = await sql.query<{ state: string; s: Date; u: Date; f: Date | null }>(
        `SELECT state, started_at AS s, updated_at AS u, finished_at AS f FROM ${t('data_migrations')} WHERE job = $1`,
        [job],
      );
      if (!row) return undefined;
      return {
        job,
        state: JSON.parse(row.state) as Cursor,
        startedAt: new Date(row.s).toISOString(),
        updatedAt: new Date(row.u).toISOString(),
        finishedAt: row.f === null ? null : new Date(row.f).toISOString(),
      };
    },

    async saveCheckpoint(job: string, state: Cursor, finished = false): Promise<void> {
      await saveCheckpoint(sql, job, state, finished);
    },

    async dropCheckpoint(job: string): Promise<void> {
      await sql.query(`DELETE FROM ${t('data_migrations')} WHERE job = $1`, [job]);
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
        const record = toRecord[store](row) as RecordOf[S];
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
        yield rows.map((row) => toRecord[store](row) as RecordOf[S]);
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
      return rows.map((row) => toRecord.audit(row));
    },

    /** Live rows of the tables a store writes, for `--dry-run` reports and the summary. */
    async sizes(): Promise<Record<StoreName, number>> {
      const out = {} as Record<StoreName, number>;
      for (const store of Object.keys(SELECT) as StoreName[]) out[store] = await target.count(store);
      return out;
    },

    async close(): Promise<void> {
      await sql.close();
    },
  };
  return target;
}

export { pairId };
