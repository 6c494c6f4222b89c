/**
 * The PostgreSQL backend, over the SQL seam (`sql.ts`): Neon, node-postgres or PGlite.
 * Tables come from `migrations/` (see 0001_initial.sql for the layout and why it is so).
 *
 * Every statement names its schema (no `search_path`), every value is a parameter, and the
 * hot operations are one statement each: `get` a primary-key lookup, `set` one upsert,
 * `isClusterActive` one index probe, `send`, `receive`, `ack` one statement. Expiry is exact:
 * every read filters on `expires_at`, the sweep only reclaims space.
 *
 * Waiting (long polls, subscriptions) uses LISTEN/NOTIFY as a wake-up where the connection
 * allows it and polls at `postgresql.pollInterval` in any case, so a lost notification, a
 * pooled endpoint without LISTEN, or a PGlite socket only ever costs latency.
 */
import { createHash } from 'node:crypto';
import type { PGlite } from '@electric-sql/pglite';
import type { StorageConfig } from '../../config/index.js';
import { BackendUnavailableError } from '../../errors.js';
import type { MetricSink } from '../../metrics.js';
import type { Driver } from '../driver.js';
import { notifications } from './notifications.js';
import { preparedStatementsBehindPooler } from './pooler.js';
import { applySchemaMigrations } from './schema-migrations.js';
import { createSql, quoteIdent, type Row, type Sql, sqlErrorMapper, withErrorMapping } from './sql.js';
import { pgAudit } from './stores/audit.js';
import { pgConnections } from './stores/connections.js';
import { pgConsumers } from './stores/consumers.js';
import { MAX_SWEEP_BATCHES, num, type StoreContext, type Transaction } from './stores/context.js';
import { pgEvents } from './stores/events.js';
import { pgKv } from './stores/kv.js';
import { pgQueues } from './stores/queues.js';
import { pgSessions } from './stores/sessions.js';
import { pgTokens } from './stores/tokens.js';

export interface PostgresDriverOptions {
  /** Use this SQL connection instead of opening one; `close()` leaves it open. */
  sql?: Sql;
  /** PGlite driver: use this instance instead of opening one; `close()` leaves it open. */
  pglite?: PGlite;
  /** Receives `Deadlocks` (lib/metrics.ts). */
  metrics?: MetricSink;
}

export function createPostgresDriver(config: StorageConfig, options: PostgresDriverOptions = {}): Driver {
  const pg = config.postgresql;
  const schema = pg.schema;
  const qualified = (table: string) => `${quoteIdent(schema)}.${table}`;
  const owned = options.sql === undefined;
  // NOTIFY channels of this schema (identifiers ≤ 63 bytes whatever the schema name).
  const channelBase = `kst_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;
  const notify = { queues: `${channelBase}_q`, events: `${channelBase}_e` };

  const state = { closed: false };
  let closing: Promise<void> | undefined;
  // Opened on first use (createStorage is synchronous); a failed open is retried by the next call.
  let opening: Promise<Sql> | undefined;
  /** The open connection, once there is one (for `pools`, which is synchronous). */
  let opened: Sql | undefined;
  /** The same connection without error mapping: `query` maps errors itself (a promise less per statement). */
  let direct: Sql | undefined;
  const mapError = sqlErrorMapper(schema, options.metrics);
  const db = (): Promise<Sql> => {
    if (state.closed) {
      return Promise.reject(
        new BackendUnavailableError('postgresql', 'this storage is closed', { retryable: false }),
      );
    }
    opening ??= (async () => {
      const raw = options.sql ?? (await createSql(pg, { pglite: { instance: options.pglite } }));
      const sql = withErrorMapping(raw, schema, options.metrics);
      try {
        // Said once, at first use, rather than as statements failing now and then under load.
        const checkPooler = pg.preparedStatements && pg.pooler === 'none';
        if (checkPooler && (await sql.detectTransactionPooler?.())) throw preparedStatementsBehindPooler();
        if (pg.migrate) await applySchemaMigrations(sql, { schema });
      } catch (error) {
        if (owned) await raw.close().catch(() => {});
        throw error;
      }
      opened = sql;
      direct = raw;
      return sql;
    })();
    opening.catch(() => {
      opening = undefined;
    });
    return opening;
  };
  /** Statements and transactions under way: `close()` lets them finish before it ends the connections. */
  let underWay = 0;
  let drained: (() => void) | undefined;
  const finished = () => {
    if (--underWay === 0) drained?.();
  };
  const query = async <R extends Row = Row>(text: string, params?: readonly unknown[]): Promise<R[]> => {
    underWay++;
    try {
      // A read that met a dropped connection (a server restart, an idle connection closed while a
      // Lambda container was frozen, Neon scaling to zero) runs once more on a fresh one. Writes
      // are not repeated: the first attempt may have committed. Each failure retires one dead
      // connection: with all of the pool's dead, poolSize tries reach a fresh one.
      for (let left = pg.poolSize; ; left--) {
        try {
          if (direct === undefined || state.closed) await db();
          return await direct!.query<R>(text, params);
        } catch (error) {
          const mapped = mapError(error);
          if (left === 0 || state.closed || !droppedConnection(mapped) || !isReadOnly(text)) throw mapped;
        }
      }
    } finally {
      finished();
    }
  };
  /** Runs `fn` in one transaction (never repeated: it writes). */
  const transaction: Transaction = async (fn) => {
    underWay++;
    try {
      return await (await db()).transaction(fn);
    } finally {
      finished();
    }
  };
  const wakeups = notifications(db, pg.listen, state);
  const stores: StoreContext = {
    config,
    table: qualified,
    query,
    transaction,
    wakeups,
    channels: notify,
    state,
  };
  const queues = pgQueues(stores);
  const events = pgEvents(stores);

  return {
    name: 'postgresql',
    kv: pgKv(stores),
    sessions: pgSessions(stores),
    queues: queues.driver,
    events: events.driver,
    tokens: pgTokens(stores),
    audit: pgAudit(stores),
    connections: pgConnections(stores),
    consumers: pgConsumers(stores),
    pools() {
      const use = opened?.poolUse?.();
      return use ? { postgresql: use } : {};
    },
    warnings: () => wakeups.warnings(),
    async ping() {
      // Reads the migrations table: an unmigrated schema is reported as such.
      await query(`SELECT 1 FROM ${qualified('schema_migrations')} LIMIT 1`);
    },
    async sweep(batchSize) {
      const batches = async (text: string, params: unknown[] = []) => {
        let removed = 0;
        for (let i = 0; i < MAX_SWEEP_BATCHES; i++) {
          const [row] = await query<{ n: number }>(text, [batchSize, ...params]);
          const deleted = num(row?.n ?? 0);
          removed += deleted;
          if (deleted < batchSize) break;
        }
        return removed;
      };
      const expired = (table: string, key: string) =>
        batches(
          `WITH d AS (DELETE FROM ${qualified(table)} WHERE (${key}) IN (
             SELECT ${key} FROM ${qualified(table)} WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED
           ) RETURNING 1) SELECT count(*)::int AS n FROM d`,
        );
      const kv = await expired('kv_store', 'key');
      const sessions = await expired('sessions', 'session_id');
      const dedup = await expired('queue_dedup', 'queue, dedup_id');
      const tokens = await expired('tokens', 'id');
      // Their subscriptions go with them (ON DELETE CASCADE).
      const connections = await expired('ws_connections', 'connection_id');
      // Audit retention: by age (the index on `at`), then by count (a primary-key range).
      const audit =
        (await batches(
          `WITH d AS (DELETE FROM ${qualified('audit_log')} WHERE id IN (
             SELECT id FROM ${qualified('audit_log')} WHERE at < now() - $2::float8 * interval '1 second'
             ORDER BY at LIMIT $1 FOR UPDATE SKIP LOCKED
           ) RETURNING 1) SELECT count(*)::int AS n FROM d`,
          [config.audit.maxAge],
        )) +
        (await batches(
          `WITH d AS (DELETE FROM ${qualified('audit_log')} WHERE id IN (
             SELECT id FROM ${qualified('audit_log')}
             WHERE id <= (SELECT coalesce(max(id), 0) FROM ${qualified('audit_log')}) - $2::bigint
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
           ) RETURNING 1) SELECT count(*)::int AS n FROM d`,
          [config.audit.maxEntries],
        ));
      return {
        kv,
        sessions,
        queues: dedup,
        events: await events.trim(batchSize),
        tokens,
        audit,
        connections,
      };
    },
    close() {
      // New calls are refused from here; long polls and subscriptions end; statements under way
      // finish. Every caller of close() waits for the same ending.
      closing ??= (async () => {
        state.closed = true;
        queues.close();
        events.close();
        wakeups.close();
        if (underWay > 0) await new Promise<void>((resolve) => (drained = resolve));
        const sql = await opening?.catch(() => undefined);
        opening = undefined;
        if (owned) await sql?.close();
      })();
      return closing;
    },
  };
}

/** A statement that only reads (no data-modifying CTE, no NOTIFY): safe to run twice. */
function isReadOnly(text: string): boolean {
  return /^\s*SELECT\b/i.test(text) && !/\b(INSERT|UPDATE|DELETE|pg_notify)\b/i.test(text);
}

/** A connection lost before or while the statement ran (not a statement timeout or a refusal). */
function droppedConnection(error: unknown): boolean {
  if (!(error instanceof BackendUnavailableError) || !error.retryable) return false;
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  return cause?.code !== '57014' && !/timeout|timed out/i.test(String(cause?.message ?? ''));
}
