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
import { createHash, randomUUID } from 'node:crypto';
import type { PGlite } from '@electric-sql/pglite';
import { maxHistoryFor, type StorageConfig } from '../../config/index.js';
import { BackendUnavailableError, ConflictError, NotFoundError, PoolerMismatchError } from '../../errors.js';
import type { MetricSink } from '../../metrics.js';
import type {
  AuditDriver,
  ConnectionDriver,
  Driver,
  EventDriver,
  Expiry,
  KvDriver,
  QueueDriver,
  SessionDriver,
  TokenDriver,
} from '../driver.js';
import { formatEventId, isoTime as iso } from '../driver.js';
import { pageOf, parseTokenPosition, tokenPosition } from '../paging.js';
import type {
  AuditEntry,
  Connection,
  DeadMessage,
  EventHandler,
  Json,
  PublishedEvent,
  ReceivedMessage,
  Scope,
  Session,
  TokenInfo,
} from '../types.js';
import { parseJson } from '../validate.js';
import { Batcher, KeyedBatcher } from './batcher.js';
import { pgConsumers } from './consumers.js';
import { likePatterns } from './like.js';
import { migrate } from './migrate.js';
import { preparedStatementsBehindPooler } from './pooler.js';
import { createSql, quoteIdent, type Row, type Sql, type SqlExecutor, withErrorMapping } from './sql.js';

export interface PostgresDriverOptions {
  /** Use this SQL connection instead of opening one; `close()` leaves it open. */
  sql?: Sql;
  /** PGlite driver: use this instance instead of opening one; `close()` leaves it open. */
  pglite?: PGlite;
  /** Receives `Deadlocks` (lib/metrics.ts). */
  metrics?: MetricSink;
}

/** Milliseconds since the epoch of a timestamptz expression, as float8 (decoded alike by every driver). */
const ms = (column: string) => `(extract(epoch from ${column}) * 1000)::float8`;
/** The current time, truncated to what the contract reports (ISO-8601 with milliseconds). */
const NOW_MS = `date_trunc('milliseconds', now())`;
const msInterval = (param: string) => `${param}::float8 * interval '1 millisecond'`;
/** An epoch-milliseconds parameter as a timestamptz, exact to the millisecond (NULL stays NULL). */
const atMs = (param: string) => `(timestamptz 'epoch' + ${param}::float8 * interval '1 millisecond')`;
/** Ids and receipts as this backend writes them (lower case); anything else names no message. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Times outside Postgres's timestamptz range (and JavaScript's) are clamped to years 1–9999. */
const MIN_MS = -62_135_596_800_000;
const MAX_MS = 253_402_300_799_999;
/** Calls that one batched queue statement carries at most (see batcher.ts). */
const MAX_BATCH = 500;
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
/** Batches one sweep deletes per table at most; the next sweep goes on. */
const MAX_SWEEP_BATCHES = 100;

/** The SQL for an optional expiry: `[expression, params]` with the parameter numbered `n`. */
function deadline(expiry: Expiry | undefined | null, n: number): [string, unknown[]] {
  if (!expiry) return ['NULL', []];
  if ('ttlMs' in expiry) return [`now() + ${msInterval(`$${n}`)}`, [expiry.ttlMs]];
  return [`to_timestamp($${n}::float8 / 1000)`, [Math.min(Math.max(expiry.atMs, MIN_MS), MAX_MS)]];
}

const num = (value: unknown) => Number(value);
const nullableMs = (value: unknown) => (value === null || value === undefined ? null : iso(num(value)));

export function createPostgresDriver(config: StorageConfig, options: PostgresDriverOptions = {}): Driver {
  const pg = config.postgresql;
  const schema = pg.schema;
  const t = (table: string) => `${quoteIdent(schema)}.${table}`;
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
        if (pg.migrate) await migrate(sql, { schema });
      } catch (error) {
        if (owned) await raw.close().catch(() => {});
        throw error;
      }
      opened = sql;
      return sql;
    })();
    opening.catch(() => {
      opening = undefined;
    });
    return opening;
  };
  /** Statements under way: `close()` lets them finish before it ends the connections. */
  const running = new Set<Promise<unknown>>();
  const query = <R extends Row = Row>(text: string, params?: readonly unknown[]): Promise<R[]> => {
    const run = async () => (await db()).query<R>(text, params);
    // A read that met a dropped connection (a server restart, an idle connection closed while a
    // Lambda container was frozen, Neon scaling to zero) runs once more on a fresh one. Writes
    // are not repeated: the first attempt may have committed.
    const readOnly = isReadOnly(text);
    const attempt = async (left: number): Promise<R[]> => {
      try {
        return await run();
      } catch (error) {
        // Each failure retires one dead connection: with all of the pool's dead, poolSize tries reach a fresh one.
        if (!readOnly || left === 0 || !droppedConnection(error) || state.closed) throw error;
        return attempt(left - 1);
      }
    };
    const call = attempt(pg.poolSize);
    running.add(call);
    const done = () => running.delete(call);
    call.then(done, done);
    return call;
  };
  /** Runs `fn` in one transaction (never repeated: it writes). */
  const transaction: Transaction = (fn) => {
    const call = (async () => (await db()).transaction(fn))();
    running.add(call);
    const done = () => running.delete(call);
    call.then(done, done);
    return call;
  };
  const wakeups = notifications(db, pg.listen, state);
  const queues = pgQueues(config, t, query, wakeups, notify.queues, state);
  const events = pgEvents(config, t, query, wakeups, notify.events, state);

  return {
    name: 'postgresql',
    kv: pgKv(t, query),
    sessions: pgSessions(t, query),
    queues: queues.driver,
    events: events.driver,
    tokens: pgTokens(t, query, transaction),
    audit: pgAudit(config, t, query),
    connections: pgConnections(t, query, transaction),
    consumers: pgConsumers(t, query, transaction),
    pools() {
      const use = opened?.poolUse?.();
      return use ? { postgresql: use } : {};
    },
    warnings: () => wakeups.warnings(),
    async ping() {
      // Reads the migrations table: an unmigrated schema is reported as such.
      await query(`SELECT 1 FROM ${t('schema_migrations')} LIMIT 1`);
    },
    async sweep(batchSize) {
      const batches = async (text: string, params: unknown[] = []) => {
        let removed = 0;
        for (let i = 0; i < MAX_SWEEP_BATCHES; i++) {
          const [row] = await query<{ n: number }>(text, [batchSize, ...params]);
          const n = num(row?.n ?? 0);
          removed += n;
          if (n < batchSize) break;
        }
        return removed;
      };
      const expired = (table: string, key: string) =>
        batches(
          `WITH d AS (DELETE FROM ${t(table)} WHERE (${key}) IN (
             SELECT ${key} FROM ${t(table)} WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED
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
          `WITH d AS (DELETE FROM ${t('audit_log')} WHERE id IN (
             SELECT id FROM ${t('audit_log')} WHERE at < now() - $2::float8 * interval '1 second'
             ORDER BY at LIMIT $1 FOR UPDATE SKIP LOCKED
           ) RETURNING 1) SELECT count(*)::int AS n FROM d`,
          [config.audit.maxAge],
        )) +
        (await batches(
          `WITH d AS (DELETE FROM ${t('audit_log')} WHERE id IN (
             SELECT id FROM ${t('audit_log')}
             WHERE id <= (SELECT coalesce(max(id), 0) FROM ${t('audit_log')}) - $2::bigint
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
        await Promise.allSettled([...running]);
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

type Query = <R extends Row = Row>(text: string, params?: readonly unknown[]) => Promise<R[]>;
type Transaction = <T>(fn: (tx: SqlExecutor) => Promise<T>) => Promise<T>;
type Table = (name: string) => string;

// ---------------------------------------------------------------------------------------
// notifications: one LISTEN per NOTIFY channel, fanned out to in-process waiters by payload

type Wakeups = ReturnType<typeof notifications>;

function notifications(db: () => Promise<Sql>, enabled: boolean, state: { closed: boolean }) {
  /** channel → handlers; a handler gets the payload, or undefined after a reconnect (anything may have happened). */
  const handlers = new Map<string, Set<(payload: string | undefined) => void>>();
  const stops = new Map<string, Promise<(() => Promise<void>) | undefined>>();
  /** Channels whose LISTEN is established. */
  const live = new Set<string>();
  /** Why LISTEN cannot work on this connection, once a check found out (waits poll instead). */
  let mismatch: PoolerMismatchError | undefined;
  const noteFailure = (error: unknown) => {
    if (!(error instanceof PoolerMismatchError) || mismatch !== undefined) return;
    mismatch = error;
    console.error(JSON.stringify({ level: 'ERROR', message: error.message, setting: error.setting }));
  };
  /** Resolves when the storage closes: waits for a LISTEN to start end then. */
  let endWaits: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    endWaits = resolve;
  });
  /** Starts listening on `channel` once; after a failure, again on a later call (not before 1 s). */
  const start = (channel: string) => {
    let stop = stops.get(channel);
    if (stop) return stop;
    stop = (async () => {
      const sql = await db();
      if (!sql.listen || state.closed) return undefined;
      const dispatch = (payload: string | undefined) => {
        for (const handler of handlers.get(channel) ?? []) handler(payload);
      };
      const stop = await sql.listen(channel, {
        onNotify: dispatch,
        onReconnect: () => {
          live.add(channel);
          dispatch(undefined);
        },
        onDisconnect: () => {
          // Until it is back, waiters poll at the short interval: wake them so they reschedule.
          live.delete(channel);
          dispatch(undefined);
        },
      });
      live.add(channel);
      return async () => {
        live.delete(channel);
        await stop();
      };
    })();
    // Listening is an optimisation: when it fails, polling still finds everything.
    stop.catch((error) => {
      noteFailure(error);
      setTimeout(() => stops.delete(channel), 1000).unref();
    });
    stops.set(channel, stop);
    return stop;
  };
  return {
    enabled,
    /** Whether notifications on `channel` flow (else callers poll at the short interval). */
    isLive: (channel: string) => live.has(channel),
    /** What an operator should change for notifications to flow (see `Driver.warnings`). */
    warnings: (): string[] => (mismatch ? [mismatch.message] : []),
    /** Registers `handler` for `channel`'s notifications (they flow once `listen` has started). */
    handle(channel: string, handler: (payload: string | undefined) => void): () => void {
      let set = handlers.get(channel);
      if (!set) {
        set = new Set();
        handlers.set(channel, set);
      }
      set.add(handler);
      return () => set.delete(handler);
    },
    /** Starts listening on `channel`; resolves once notifications flow, or when they cannot, or after `maxWaitMs`. */
    async listen(channel: string, maxWaitMs: number): Promise<void> {
      if (!enabled || state.closed) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        start(channel).catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, maxWaitMs);
        }),
        closed,
      ]);
      clearTimeout(timer);
    },
    /** Stops listening without waiting for a LISTEN still connecting (it is stopped once it has). */
    close() {
      endWaits();
      handlers.clear();
      live.clear();
      const all = [...stops.values()];
      stops.clear();
      for (const stop of all) stop.then((off) => off?.()).catch(() => {});
    },
  };
}

// ---------------------------------------------------------------------------------------

function pgKv(t: Table, query: Query): KvDriver {
  const kv = t('kv_store');
  const LIVE = '(expires_at IS NULL OR expires_at > now())';
  const driver: KvDriver = {
    async get(key) {
      const [row] = await query<{ value: string }>(`SELECT value FROM ${kv} WHERE key = $1 AND ${LIVE}`, [
        key,
      ]);
      return row && parseJson(row.value);
    },
    async getEntry(key) {
      const [row] = await query<{ value: string; expires: number | null }>(
        `SELECT value, ${ms('expires_at')} AS expires FROM ${kv} WHERE key = $1 AND ${LIVE}`,
        [key],
      );
      return row && { value: parseJson(row.value), expiresAt: nullableMs(row.expires) };
    },
    async set(key, json, expiry, condition) {
      const [expires, extra] = deadline(expiry, 3);
      const params = [key, json, ...extra];
      if (condition === 'xx') {
        const rows = await query(
          `UPDATE ${kv} SET value = $2, expires_at = ${expires} WHERE key = $1 AND ${LIVE} RETURNING 1`,
          params,
        );
        return rows.length === 1;
      }
      // An expiry already past stores an invisible row, which the sweep removes: nothing visible remains.
      const onlyIfGone = condition === 'nx' ? 'WHERE t.expires_at IS NOT NULL AND t.expires_at <= now()' : '';
      const rows = await query(
        `INSERT INTO ${kv} AS t (key, value, expires_at) VALUES ($1, $2, ${expires})
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at ${onlyIfGone}
         RETURNING 1`,
        params,
      );
      return rows.length === 1;
    },
    async delete(key) {
      const [row] = await query<{ live: boolean }>(
        `DELETE FROM ${kv} WHERE key = $1 RETURNING ${LIVE} AS live`,
        [key],
      );
      return row?.live === true;
    },
    async exists(key) {
      return (await query(`SELECT 1 FROM ${kv} WHERE key = $1 AND ${LIVE}`, [key])).length === 1;
    },
    async expire(key, expiry) {
      const [expires, extra] = deadline(expiry, 2);
      const rows = await query(
        `UPDATE ${kv} SET expires_at = ${expires} WHERE key = $1 AND ${LIVE} RETURNING 1`,
        [key, ...extra],
      );
      return rows.length === 1;
    },
    async ttlMs(key) {
      const [row] = await query<{ left: number | null }>(
        `SELECT ${ms('expires_at')} - ${ms('now()')} AS left FROM ${kv} WHERE key = $1 AND ${LIVE}`,
        [key],
      );
      if (!row) return undefined;
      return row.left === null ? null : Math.max(0, num(row.left));
    },
    async incr(key, by) {
      // One upsert: a missing or expired key starts from 0 without TTL; a live integer adds `by`
      // and keeps its TTL. Anything else (not an integer, or a sum past 2^53-1) updates nothing.
      const rows = await query<{ value: string }>(
        `INSERT INTO ${kv} AS t (key, value, expires_at) VALUES ($1, $2, NULL)
         ON CONFLICT (key) DO UPDATE SET
           value = CASE WHEN t.expires_at <= now() THEN EXCLUDED.value
                        ELSE (t.value::numeric + EXCLUDED.value::numeric)::text END,
           expires_at = CASE WHEN t.expires_at <= now() THEN NULL ELSE t.expires_at END
         WHERE CASE WHEN t.expires_at <= now() THEN true
                    WHEN t.value ~ '^-?[0-9]{1,16}$'
                      THEN abs(t.value::numeric) <= 9007199254740991
                       AND abs(t.value::numeric + EXCLUDED.value::numeric) <= 9007199254740991
                    ELSE false END
         RETURNING value`,
        [key, String(by)],
      );
      if (rows[0]) return num(rows[0].value);
      const current = await driver.get(key);
      if (typeof current === 'number' && Number.isSafeInteger(current))
        throw new ConflictError(`incr of ${JSON.stringify(key)} would overflow`);
      throw new ConflictError(`value of ${JSON.stringify(key)} is not an integer`);
    },
    async getMany(keys) {
      if (keys.length === 0) return [];
      const rows = await query<{ key: string; value: string }>(
        `SELECT key, value FROM ${kv} WHERE key = ANY($1::text[]) AND ${LIVE}`,
        [keys],
      );
      const found = new Map(rows.map((r) => [r.key, r.value]));
      return keys.map((key) => {
        const json = found.get(key);
        return json === undefined ? undefined : parseJson(json);
      });
    },
    async setMany(entries) {
      if (entries.length === 0) return;
      // One row per key (the last entry wins): an upsert cannot touch the same row twice. Rows
      // are written in key order, so concurrent calls lock them in one order and never deadlock.
      const last = new Map(entries.map((e) => [e.key, e]));
      const rows = [...last.values()];
      await query(
        `INSERT INTO ${kv} (key, value, expires_at)
         SELECT k, v, CASE WHEN ttl IS NULL THEN NULL ELSE now() + ttl * interval '1 millisecond' END
         FROM unnest($1::text[], $2::text[], $3::float8[]) AS u(k, v, ttl)
         ORDER BY k
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
        [rows.map((e) => e.key), rows.map((e) => e.json), rows.map((e) => e.ttlMs ?? null)],
      );
    },
  };
  return driver;
}

// ---------------------------------------------------------------------------------------

type SessionRow = {
  session_id: string;
  cluster_id: string;
  user_id: string | null;
  correlation_id: string | null;
  service_identity: string | null;
  data: string;
  created: number;
  active: number;
  expires: number;
};

function pgSessions(t: Table, query: Query): SessionDriver {
  const sessions = t('sessions');
  const COLUMNS = `session_id, cluster_id, user_id, correlation_id, service_identity, data,
    ${ms('created_at')} AS created, ${ms('last_activity')} AS active, ${ms('expires_at')} AS expires`;
  const view = (r: SessionRow): Session => ({
    sessionId: r.session_id,
    clusterId: r.cluster_id,
    userId: r.user_id,
    correlationId: r.correlation_id,
    serviceIdentity: r.service_identity,
    data: parseJson(r.data) as Session['data'],
    createdAt: iso(num(r.created)),
    lastActivity: iso(num(r.active)),
    expiresAt: iso(num(r.expires)),
  });
  const many = async (column: string, value: string) =>
    (
      await query<SessionRow>(
        `SELECT ${COLUMNS} FROM ${sessions} WHERE ${column} = $1 AND expires_at > now()
         ORDER BY created_at, session_id`,
        [value],
      )
    ).map(view);
  return {
    async create(s) {
      const [row] = await query<SessionRow>(
        `INSERT INTO ${sessions} (session_id, cluster_id, user_id, correlation_id, service_identity, data,
           ttl_ms, created_at, last_activity, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7::float8,
           coalesce(${atMs('$8')}, ${NOW_MS}), coalesce(${atMs('$9')}, ${NOW_MS}),
           coalesce(${atMs('$10')}, ${NOW_MS} + ${msInterval('$7')}))
         RETURNING ${COLUMNS}`,
        [
          s.sessionId,
          s.clusterId,
          s.userId,
          s.correlationId,
          s.serviceIdentity,
          s.dataJson,
          s.ttlMs,
          s.times?.createdAtMs ?? null,
          s.times?.lastActivityMs ?? null,
          s.times?.expiresAtMs ?? null,
        ],
      );
      return view(row!);
    },
    async get(id) {
      const [row] = await query<SessionRow>(
        `SELECT ${COLUMNS} FROM ${sessions} WHERE session_id = $1 AND expires_at > now()`,
        [id],
      );
      return row && view(row);
    },
    async keepAlive(id, ttlMs, times) {
      const [row] = await query<SessionRow>(
        `UPDATE ${sessions} SET last_activity = coalesce(${atMs('$3')}, ${NOW_MS}),
           expires_at = coalesce(${atMs('$4')}, ${NOW_MS} + coalesce($2::float8, ttl_ms) * interval '1 millisecond')
         WHERE session_id = $1 AND expires_at > now() RETURNING ${COLUMNS}`,
        [id, ttlMs ?? null, times?.lastActivityMs ?? null, times?.expiresAtMs ?? null],
      );
      return row && view(row);
    },
    async end(id) {
      const [row] = await query<{ live: boolean }>(
        `DELETE FROM ${sessions} WHERE session_id = $1 RETURNING expires_at > now() AS live`,
        [id],
      );
      return row?.live === true;
    },
    byCluster: (clusterId) => many('cluster_id', clusterId),
    byCorrelation: (correlationId) => many('correlation_id', correlationId),
    async activeClusterPage(after, limit, within) {
      // A skip scan over the cluster index: one probe per active cluster, however many sessions
      // each has; the recursion runs only as far as the outer LIMIT fetches.
      const filter = within === undefined ? '' : 'AND cluster_id LIKE ANY($3::text[])';
      const rows = await query<{ cluster_id: string }>(
        `WITH RECURSIVE c AS (
           (SELECT cluster_id FROM ${sessions} WHERE cluster_id > $1 AND expires_at > now()
            ORDER BY cluster_id LIMIT 1)
           UNION ALL
           SELECT (SELECT s.cluster_id FROM ${sessions} s
                   WHERE s.cluster_id > c.cluster_id AND s.expires_at > now() ORDER BY s.cluster_id LIMIT 1)
           FROM c WHERE c.cluster_id IS NOT NULL
         )
         SELECT cluster_id FROM c WHERE cluster_id IS NOT NULL ${filter} LIMIT $2`,
        // Every name is longer than '': the first page starts before all of them.
        [after ?? '', limit + 1, ...(within === undefined ? [] : [likePatterns(within)])],
      );
      return pageOf(
        rows.map((r) => r.cluster_id),
        limit,
        (clusterId) => clusterId,
      );
    },
    async isClusterActive(clusterId) {
      const [row] = await query<{ active: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM ${sessions} WHERE cluster_id = $1 AND expires_at > now()) AS active`,
        [clusterId],
      );
      return row?.active === true;
    },
  };
}

// ---------------------------------------------------------------------------------------

type MessageRow = {
  id: string;
  receipt: string | null;
  payload: string;
  attempts: number;
  state: 'ready' | 'leased' | 'dead';
  enqueued: number;
  died: number | null;
  seq: number;
};

function pgQueues(
  config: StorageConfig,
  t: Table,
  query: Query,
  wakeups: Wakeups,
  channel: string,
  state: { closed: boolean },
) {
  const q = t('queues');
  const dedup = t('queue_dedup');
  const maxAttempts = config.queues.maxAttempts;
  const dedupWindowMs = Math.round(config.queues.dedupWindow * 1000);
  const pollMs = Math.round(config.postgresql.pollInterval * 1000);
  /** In-process waiters per queue, woken by a notification or when the storage closes. */
  const waiters = new Map<string, Set<() => void>>();
  /** Notifications seen per queue (and in all, for reconnects): a receive that saw one while claiming looks again at once. */
  const signals = new Map<string, number>();
  let reconnects = 0;
  const signalOf = (queue: string) => `${signals.get(queue) ?? 0}:${reconnects}`;
  const wake = (queue: string | undefined) => {
    if (queue === undefined) {
      reconnects++;
      for (const set of waiters.values()) for (const w of set) w();
      return;
    }
    if (waiters.has(queue)) signals.set(queue, (signals.get(queue) ?? 0) + 1);
    for (const w of waiters.get(queue) ?? []) w();
  };
  /**
   * A CTE that notifies waiters of `$queueParam` when `source` answers a row. Sent whether or not
   * this process listens: another may (a worker on a direct connection while Lambdas use a pooler).
   */
  const notifyCte = (source: string, queueParam: string) =>
    `, n AS (SELECT pg_notify('${channel}', ${queueParam}) FROM ${source} LIMIT 1)`;
  const notified = ', (SELECT count(*) FROM n)::int AS notified';
  /** A lease that ended on the last attempt is dead, whatever wrote it there: its receipt no longer counts. */
  const LEASE_LIVE = `state = 'leased' AND (visible_at > now() OR attempts < $4)`;

  /** Why a lease call matched no row: NotFoundError for an unknown message, else ConflictError. */
  const leaseError = async (queue: string, id: string): Promise<never> => {
    const known =
      UUID.test(id) && (await query(`SELECT 1 FROM ${q} WHERE id = $1 AND queue = $2`, [id, queue]));
    if (!known || known.length === 0) throw new NotFoundError(`message ${id} not found`);
    throw new ConflictError(`receipt for message ${id} is stale: the lease ended`);
  };
  /** Runs a lease statement (params: queue, id, receipt, …) and answers its row, or throws why there is none. */
  const leased = async <R extends Row>(
    text: string,
    queue: string,
    id: string,
    receipt: string,
    params: unknown[],
  ) => {
    if (UUID.test(id) && UUID.test(receipt)) {
      const [row] = await query<R>(text, [queue, id, receipt, ...params]);
      if (row) return row;
    }
    return leaseError(queue, id);
  };
  /** Leases whose time ran out on their last attempt become dead letters (died when the lease ended). */
  const settle = (queue: string) =>
    query(
      `UPDATE ${q} SET state = 'dead', receipt = NULL, died_at = visible_at
       WHERE queue = $1 AND state = 'leased' AND visible_at <= now() AND attempts >= $2`,
      [queue, maxAttempts],
    );
  const claimNow = async (queue: string, max: number, visibilityMs: number): Promise<ReceivedMessage[]> => {
    const rows = await query<MessageRow>(
      // Candidates, unlocked: the first waiting messages in FIFO order and the first ended leases,
      // each from its own index (with headroom for rows other receivers are taking). Then only
      // the rows picked, in enqueue order, are locked; rows other receivers hold are skipped,
      // never waited for.
      `WITH candidates AS MATERIALIZED (
         (SELECT id, seq FROM ${q}
          WHERE queue = $1 AND state = 'ready' AND visible_at <= now() ORDER BY seq LIMIT $5)
         UNION ALL
         (SELECT id, seq FROM ${q}
          WHERE queue = $1 AND state = 'leased' AND visible_at <= now() ORDER BY visible_at LIMIT $5)
       ), picked AS MATERIALIZED (
         SELECT m.id FROM ${q} AS m JOIN candidates AS c ON c.id = m.id
         WHERE m.queue = $1 AND m.state <> 'dead' AND m.visible_at <= now()
         ORDER BY c.seq LIMIT $2
         FOR UPDATE OF m SKIP LOCKED
       )
       UPDATE ${q} AS m SET
         state = CASE WHEN m.attempts >= $4 THEN 'dead' ELSE 'leased' END,
         attempts = CASE WHEN m.attempts >= $4 THEN m.attempts ELSE m.attempts + 1 END,
         receipt = CASE WHEN m.attempts >= $4 THEN NULL ELSE gen_random_uuid() END,
         visible_at = CASE WHEN m.attempts >= $4 THEN m.visible_at ELSE now() + ${msInterval('$3')} END,
         died_at = CASE WHEN m.attempts >= $4 THEN m.visible_at END
       FROM picked WHERE m.id = picked.id
       RETURNING m.id::text AS id, m.receipt::text AS receipt, m.payload, m.attempts, m.state,
         ${ms('m.enqueued_at')} AS enqueued, m.seq::float8 AS seq`,
      [queue, max, visibilityMs, maxAttempts, max * 4 + 64],
    );
    const delivered = rows.filter((r) => r.state === 'leased').sort((a, b) => num(a.seq) - num(b.seq));
    const messages = delivered.map(
      (r): ReceivedMessage => ({
        id: r.id,
        receipt: r.receipt!,
        payload: parseJson(r.payload),
        attempts: num(r.attempts),
        enqueuedAt: iso(num(r.enqueued)),
      }),
    );
    // Messages that died on the way took places: look again for the rest.
    if (delivered.length < rows.length && messages.length < max)
      messages.push(...(await claimNow(queue, max - messages.length, visibilityMs)));
    return messages;
  };
  /**
   * Receivers of one queue and lease length claiming at the same moment share one statement:
   * the first messages in FIFO order, handed out in turn, each receiver its `max` at most.
   */
  const claims = new KeyedBatcher<number, ReceivedMessage[]>(async (key, wants) => {
    const cut = key.lastIndexOf('\0');
    const got = await claimNow(key.slice(0, cut), sum(wants), Number(key.slice(cut + 1)));
    let at = 0;
    return wants.map((want) => {
      const mine = got.slice(at, at + want);
      at += want;
      return mine;
    });
  }, MAX_BATCH);
  const claim = (queue: string, max: number, visibilityMs: number) =>
    claims.add(`${queue}\0${visibilityMs}`, max);
  /** Concurrent acks go out as one DELETE; each answers whether its message was removed. */
  const acks = new Batcher<{ queue: string; id: string; receipt: string }, boolean>(async (items) => {
    const rows = await query<{ id: string }>(
      `DELETE FROM ${q} AS m
       USING unnest($1::text[], $2::uuid[], $3::uuid[]) AS a(queue, id, receipt)
       WHERE m.id = a.id AND m.queue = a.queue AND m.receipt = a.receipt
         AND m.state = 'leased' AND (m.visible_at > now() OR m.attempts < $4)
       RETURNING m.id::text AS id`,
      [items.map((i) => i.queue), items.map((i) => i.id), items.map((i) => i.receipt), maxAttempts],
    );
    // A message acked twice in one batch is removed once: the first of its acks counts.
    const removed = new Set(rows.map((r) => r.id));
    return items.map((i) => removed.delete(i.id));
  }, MAX_BATCH);
  /** Concurrent sends without a dedupId go out as one INSERT (ids in `items` order, so FIFO holds). */
  const sends = new Batcher<{ id: string; queue: string; json: string; delayMs: number }, void>(
    async (items) => {
      // A delayed message notifies too: waiters then know when to look again.
      await query(
        `WITH m AS (
           INSERT INTO ${q} (id, queue, payload, enqueued_at, visible_at)
           SELECT i.id, i.queue, i.payload, ${NOW_MS}, now() + ${msInterval('i.delay')}
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::float8[]) WITH ORDINALITY
             AS i(id, queue, payload, delay, n)
           ORDER BY i.n
           RETURNING queue
         ), n AS (SELECT pg_notify('${channel}', queue) FROM (SELECT DISTINCT queue FROM m) AS d)
         SELECT (SELECT count(*) FROM n)::int AS notified`,
        [
          items.map((i) => i.id),
          items.map((i) => i.queue),
          items.map((i) => i.json),
          items.map((i) => i.delayMs),
        ],
      );
      return items.map(() => undefined);
    },
    MAX_BATCH,
  );
  /** Milliseconds until something in `queue` becomes visible by itself (a delay or lease ending). */
  const nextDue = async (queue: string): Promise<number> => {
    const [row] = await query<{ due: number | null }>(
      `SELECT ${ms(`least(
         (SELECT min(visible_at) FROM ${q} WHERE queue = $1 AND state = 'ready'),
         (SELECT min(visible_at) FROM ${q} WHERE queue = $1 AND state = 'leased'))`)} - ${ms('now()')} AS due`,
      [queue],
    );
    return row?.due === null || row?.due === undefined ? Number.POSITIVE_INFINITY : num(row.due);
  };
  const stopWaking = wakeups.handle(channel, wake);
  const sleep = (queue: string, delayMs: number) =>
    new Promise<void>((resolve) => {
      let set = waiters.get(queue);
      if (!set) {
        set = new Set();
        waiters.set(queue, set);
      }
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && waiters.get(queue) === set) waiters.delete(queue);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, delayMs));
      set.add(done);
    });

  const driver: QueueDriver = {
    async send(queue, json, delayMs, dedupId) {
      const id = randomUUID();
      const insert = (from: string) =>
        `INSERT INTO ${q} (id, queue, payload, enqueued_at, visible_at)
         SELECT $1::uuid, $2::text, $3::text, ${NOW_MS}, now() + ${msInterval('$4')} ${from} RETURNING id`;
      if (dedupId === undefined) {
        await sends.add({ id, queue, json, delayMs });
        return { id, duplicate: false };
      }
      for (let attempt = 0; ; attempt++) {
        // The dedup row is claimed (new, or replacing one whose window ended) and the message
        // inserted in one statement; a live dedup row answers the message first sent with it.
        const [row] = await query<{ sent: number; existing: string | null }>(
          `WITH d AS (
             INSERT INTO ${dedup} AS d (queue, dedup_id, message_id, expires_at)
             VALUES ($2, $5, $1, now() + ${msInterval('$6')})
             ON CONFLICT (queue, dedup_id) DO UPDATE
               SET message_id = EXCLUDED.message_id, expires_at = EXCLUDED.expires_at
               WHERE d.expires_at <= now()
             RETURNING message_id
           ), m AS (${insert('FROM d')})${notifyCte('m', '$2')}
           SELECT (SELECT count(*) FROM m)::int AS sent,
             (SELECT message_id::text FROM ${dedup}
              WHERE queue = $2 AND dedup_id = $5 AND expires_at > now()) AS existing
             ${notified}`,
          [id, queue, json, delayMs, dedupId, dedupWindowMs],
        );
        if (num(row?.sent) === 1) return { id, duplicate: false };
        if (row?.existing) return { id: row.existing, duplicate: true };
        // A concurrent send committed the dedup row after this statement's snapshot (the stale
        // row it replaced does not count: its window ended): look again with a new snapshot.
        if (attempt >= 5) throw new ConflictError(`dedupId ${JSON.stringify(dedupId)} is contended; retry`);
      }
    },
    async receive(queue, max, visibilityMs, waitMs) {
      if (waitMs === 0) return claim(queue, max, visibilityMs);
      const deadline = Date.now() + waitMs;
      // Notifications wake this wait at once; until they flow (or without them) it polls.
      await wakeups.listen(channel, Math.min(waitMs, 2000));
      // A slot in the queue's waiters for the whole call, so notifications are counted from now.
      let mine = waiters.get(queue);
      if (!mine) {
        mine = new Set();
        waiters.set(queue, mine);
      }
      const keep = () => {};
      mine.add(keep);
      try {
        for (;;) {
          // A storage closed while this call waited answers what a wait without messages does.
          if (state.closed) return [];
          const mark = signalOf(queue);
          const got = await claim(queue, max, visibilityMs);
          if (got.length > 0) return got;
          const now = Date.now();
          if (now >= deadline || state.closed) return [];
          const due = await nextDue(queue);
          // Visible now but not claimable: other receivers hold those rows for a moment.
          const pause = due > 0 ? due : 20;
          // A notification since the claim began means something may have arrived: look again at once.
          if (signalOf(queue) === mark) await sleep(queue, Math.min(deadline - now, pause, pollMs));
          if (state.closed) return [];
        }
      } finally {
        mine.delete(keep);
        if (mine.size === 0 && waiters.get(queue) === mine) {
          waiters.delete(queue);
          signals.delete(queue);
        }
      }
    },
    async ack(queue, id, receipt) {
      if (UUID.test(id) && UUID.test(receipt) && (await acks.add({ queue, id, receipt }))) return;
      await leaseError(queue, id);
    },
    async nack(queue, id, receipt, delayMs) {
      await leased(
        `WITH u AS (
           UPDATE ${q} SET
             state = CASE WHEN attempts >= $4 THEN 'dead' ELSE 'ready' END,
             receipt = NULL,
             visible_at = CASE WHEN attempts >= $4 THEN visible_at ELSE now() + ${msInterval('$5')} END,
             died_at = CASE WHEN attempts >= $4 THEN ${NOW_MS} END
           WHERE id = $2 AND queue = $1 AND receipt = $3 AND ${LEASE_LIVE}
           RETURNING state
         )${notifyCte("u WHERE state = 'ready'", '$1')}
         SELECT state${notified} FROM u`,
        queue,
        id,
        receipt,
        [maxAttempts, delayMs],
      );
    },
    async extend(queue, id, receipt, visibilityMs) {
      await leased(
        // Notifies too: a shorter lease ends sooner, and waiters recompute when to look again.
        `WITH u AS (
           UPDATE ${q} SET visible_at = now() + ${msInterval('$5')}
           WHERE id = $2 AND queue = $1 AND receipt = $3 AND ${LEASE_LIVE} RETURNING 1
         )${notifyCte('u', '$1')}
         SELECT 1${notified} FROM u`,
        queue,
        id,
        receipt,
        [maxAttempts, visibilityMs],
      );
    },
    async stats(queue) {
      // Each state counted from its own index. Leases that ended count as waiting (or dead on
      // their last attempt), without writing.
      const [row] = await query<
        Record<'ready' | 'delayed' | 'inflight' | 'ended' | 'spent' | 'dead', number>
      >(
        `SELECT
           (SELECT count(*) FROM ${q} WHERE queue = $1 AND state = 'ready')::int AS ready,
           (SELECT count(*) FROM ${q} WHERE queue = $1 AND state = 'ready' AND visible_at > now())::int AS delayed,
           l.inflight, l.ended, l.spent,
           (SELECT count(*) FROM ${q} WHERE queue = $1 AND state = 'dead')::int AS dead
         FROM (
           SELECT count(*) FILTER (WHERE visible_at > now())::int AS inflight,
             count(*) FILTER (WHERE visible_at <= now() AND attempts < $2)::int AS ended,
             count(*) FILTER (WHERE visible_at <= now() AND attempts >= $2)::int AS spent
           FROM ${q} WHERE queue = $1 AND state = 'leased'
         ) AS l`,
        [queue, maxAttempts],
      );
      const n = (field: keyof NonNullable<typeof row>) => num(row?.[field] ?? 0);
      return {
        depth: n('ready') + n('ended'),
        delayed: n('delayed'),
        inFlight: n('inflight'),
        dead: n('dead') + n('spent'),
      };
    },
    async deadLetters(queue, limit) {
      await settle(queue);
      const rows = await query<MessageRow>(
        `SELECT id::text AS id, payload, attempts, ${ms('enqueued_at')} AS enqueued, ${ms('died_at')} AS died
         FROM ${q} WHERE queue = $1 AND state = 'dead' ORDER BY died_at, seq LIMIT $2`,
        [queue, limit],
      );
      return rows.map(
        (r): DeadMessage => ({
          id: r.id,
          payload: parseJson(r.payload),
          attempts: num(r.attempts),
          enqueuedAt: iso(num(r.enqueued)),
          diedAt: iso(num(r.died)),
        }),
      );
    },
    async redrive(queue, limit) {
      await settle(queue);
      const [row] = await query<{ moved: number }>(
        `WITH r AS (
           SELECT id FROM ${q} WHERE queue = $1 AND state = 'dead'
           ORDER BY died_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED
         ), u AS (
           UPDATE ${q} AS m SET state = 'ready', attempts = 0, receipt = NULL, visible_at = now(), died_at = NULL
           FROM r WHERE m.id = r.id RETURNING 1
         )${notifyCte('u', '$1')}
         SELECT (SELECT count(*) FROM u)::int AS moved${notified}`,
        [queue, limit],
      );
      return num(row?.moved ?? 0);
    },
  };
  return {
    driver,
    close() {
      wake(undefined);
      stopWaking();
    },
  };
}

// ---------------------------------------------------------------------------------------

type EventRow = {
  id: number;
  message: string;
  at: number;
};

/**
 * A NOTIFY payload must be shorter than this many bytes (a limit of the server); an event
 * whose notification would not fit travels as its header alone and is read from history.
 */
const NOTIFY_PAYLOAD_LIMIT = 8000;

/** What a publish notifies: `[id, channel, publishedAtMs]` as JSON, then a newline and the message when it fits. */
interface EventNotice {
  id: number;
  channel: string;
  atMs: number;
  message: string | undefined;
}

function parseNotice(payload: string): EventNotice | undefined {
  const newline = payload.indexOf('\n');
  try {
    const header = JSON.parse(newline < 0 ? payload : payload.slice(0, newline)) as unknown;
    if (Array.isArray(header) && header.length === 3) {
      const [id, channel, atMs] = header as [number, string, number];
      return {
        id: Number(id),
        channel,
        atMs: Number(atMs),
        message: newline < 0 ? undefined : payload.slice(newline + 1),
      };
    }
  } catch {
    // Not a header: the `id:channel` notification of an older publisher.
  }
  const colon = payload.indexOf(':');
  const id = Number(payload.slice(0, colon));
  if (colon < 0 || !Number.isSafeInteger(id)) return undefined;
  return { id, channel: payload.slice(colon + 1), atMs: 0, message: undefined };
}

function pgEvents(
  config: StorageConfig,
  t: Table,
  query: Query,
  wakeups: Wakeups,
  channelName: string,
  state: { closed: boolean },
) {
  const events = t('events');
  const channels = t('event_channels');
  const pollMs = Math.round(config.postgresql.pollInterval * 1000);
  // With notifications flowing, polling is only the safety net for one lost without a reconnect.
  const idlePollMs = () => (wakeups.isLive(channelName) ? Math.max(pollMs * 10, 5000) : pollMs);
  const boundOf = maxHistoryFor(config);
  const subscriptions = new Set<{ close(): void }>();

  const history = async (channel: string, after: number, limit: number): Promise<PublishedEvent[]> => {
    const rows = await query<EventRow>(
      // The bound applies on read too: publishers racing each other may each trim too little.
      `SELECT id::float8 AS id, message, ${ms('published_at')} AS at FROM ${events}
       WHERE channel = $1
         AND id > greatest($2::bigint, (SELECT last_id FROM ${channels} WHERE channel = $1) - $4::bigint)
       ORDER BY id LIMIT $3`,
      [channel, after, limit, boundOf(channel)],
    );
    return rows.map((r) => ({
      id: formatEventId(num(r.id)),
      channel,
      message: parseJson(r.message) as Json,
      publishedAt: iso(num(r.at)),
    }));
  };

  const driver: EventDriver = {
    async publish(channel, json, maxHistory) {
      // The channel's counter row is locked until commit, so publishers of one channel commit
      // in id order. Events past the channel's bound are dropped in the same statement.
      const [row] = await query<{ id: number; at: number }>(
        `WITH c AS (
           INSERT INTO ${channels} AS c (channel, last_id) VALUES ($1, 1)
           ON CONFLICT (channel) DO UPDATE SET last_id = c.last_id + 1
           RETURNING last_id
         ), e AS (
           INSERT INTO ${events} (channel, id, message, published_at)
           SELECT $1, last_id, $2, ${NOW_MS} FROM c
           RETURNING id, published_at
         ), trimmed AS (
           DELETE FROM ${events} WHERE channel = $1 AND id <= (SELECT last_id FROM c) - $3::bigint RETURNING 1
         ), h AS (
           SELECT json_build_array(last_id, $1::text, ${ms(NOW_MS)}::bigint)::text AS header FROM c
         ), n AS (
           SELECT pg_notify('${channelName}', CASE
             WHEN octet_length(header) + 1 + octet_length($2) < ${NOTIFY_PAYLOAD_LIMIT} THEN header || E'\n' || $2
             ELSE header END) FROM h
         )
         SELECT id::float8 AS id, ${ms('published_at')} AS at,
           (SELECT count(*) FROM trimmed)::int AS trimmed, (SELECT count(*) FROM n)::int AS notified
         FROM e`,
        [channel, json, maxHistory],
      );
      return { id: formatEventId(num(row!.id)), publishedAt: iso(num(row!.at)) };
    },
    async last(channel) {
      const [row] = await query<{ id: number }>(
        `SELECT last_id::float8 AS id FROM ${channels} WHERE channel = $1`,
        [channel],
      );
      return row ? num(row.id) : 0;
    },
    history,
    async subscribe(channel, onEvent: EventHandler, onReconnect) {
      // An event that travels in its notification and follows the last one seen is handed on
      // as it is: no query. Otherwise a pump, woken by a notification for this channel or by its
      // timer, reads what was published since the last event seen (one query per wake-up,
      // however many events arrived). The facade orders, deduplicates and fills gaps.
      let seen = await driver.last(channel);
      let running = false;
      let again = false;
      let closed = false;
      let timer: NodeJS.Timeout | undefined;
      const pump = async () => {
        if (closed || state.closed) return;
        if (running) {
          again = true;
          return;
        }
        running = true;
        clearTimeout(timer);
        try {
          do {
            again = false;
            const page = await history(channel, seen, 1000);
            for (const event of page) {
              seen = Math.max(seen, Number(event.id));
              await onEvent(event);
            }
            if (page.length === 1000) again = true;
          } while (again && !closed);
        } catch {
          // The next wake-up or tick tries again; the facade catches up on reconnect.
        } finally {
          running = false;
          if (!closed && !state.closed) {
            // Listening again if it failed before (at most every second; see notifications()).
            void wakeups.listen(channelName, 0);
            timer = setTimeout(pump, idlePollMs());
            timer.unref();
          }
        }
      };
      const off = wakeups.handle(channelName, (payload) => {
        if (payload === undefined) {
          onReconnect();
          void pump();
          return;
        }
        const notice = parseNotice(payload);
        if (notice === undefined || notice.channel !== channel || notice.id <= seen) return;
        if (notice.message === undefined || notice.id !== seen + 1) {
          // The event did not fit in the notification, or one before it was missed: history has it.
          void pump();
          return;
        }
        seen = notice.id;
        void onEvent({
          id: formatEventId(notice.id),
          channel,
          message: parseJson(notice.message),
          publishedAt: iso(notice.atMs),
        });
      });
      const subscription = {
        close() {
          closed = true;
          clearTimeout(timer);
          off();
        },
      };
      subscriptions.add(subscription);
      await wakeups.listen(channelName, 2000);
      timer = setTimeout(pump, idlePollMs());
      timer.unref();
      return async () => {
        subscription.close();
        subscriptions.delete(subscription);
      };
    },
  };

  /** Drops events past each channel's bound (a bound lowered since they were published). */
  const trim = async (batchSize: number): Promise<number> => {
    const smallest = Math.min(config.events.maxHistory, ...Object.values(config.events.maxHistoryByChannel));
    const over = await query<{ channel: string; last: number; first: number }>(
      `SELECT c.channel, c.last_id::float8 AS last, f.first::float8 AS first
       FROM ${channels} c CROSS JOIN LATERAL (SELECT min(id) AS first FROM ${events} WHERE channel = c.channel) f
       WHERE f.first IS NOT NULL AND c.last_id - f.first + 1 > $1`,
      [smallest],
    );
    let removed = 0;
    for (const { channel, last } of over) {
      const keepFrom = num(last) - boundOf(channel);
      for (let i = 0; i < MAX_SWEEP_BATCHES; i++) {
        const [row] = await query<{ n: number }>(
          `WITH d AS (DELETE FROM ${events} WHERE channel = $1 AND id IN (
             SELECT id FROM ${events} WHERE channel = $1 AND id <= $2 ORDER BY id LIMIT $3
           ) RETURNING 1) SELECT count(*)::int AS n FROM d`,
          [channel, keepFrom, batchSize],
        );
        removed += num(row?.n ?? 0);
        if (num(row?.n ?? 0) < batchSize) break;
      }
    }
    return removed;
  };

  return {
    driver,
    trim,
    close() {
      for (const s of subscriptions) s.close();
      subscriptions.clear();
    },
  };
}

// ---------------------------------------------------------------------------------------

type TokenRow = {
  id: string;
  hash: string;
  identity: string;
  scopes: string[];
  resources: string[];
  created: number;
  expires: number | null;
  issuer_id: string | null;
};

/** Times a revoke that met a deadlock (two revokes of overlapping trees) runs again. */
const REVOKE_ATTEMPTS = 3;

/**
 * Tokens and their lineage (0004_token_lineage.sql). An insert under an issuer takes a share lock
 * on the issuer's live row in the same statement; a revoke locks every row of the tree below the
 * token (`FOR UPDATE`, which that share lock waits for) before deleting it. So an insert either
 * commits before the revoke locks its issuer — and the revoke, walking again after its locks,
 * finds the new token — or waits and then finds its issuer gone.
 */
function pgTokens(t: Table, query: Query, transaction: Transaction): TokenDriver {
  const tokens = t('tokens');
  const LIVE = '(expires_at IS NULL OR expires_at > now())';
  const COLUMNS = `id, hash, identity, scopes, resources, ${ms('created_at')} AS created, ${ms('expires_at')} AS expires, issuer_id`;
  const info = (r: TokenRow): TokenInfo => ({
    id: r.id,
    identity: r.identity,
    scopes: r.scopes as Scope[],
    resources: r.resources,
    createdAt: iso(num(r.created)),
    expiresAt: nullableMs(r.expires),
    issuerId: r.issuer_id,
  });
  const INSERT = `INSERT INTO ${tokens} (id, hash, identity, scopes, resources, created_at, expires_at, issuer_id)`;
  const VALUES = '$1, $2, $3, $4::text[], $5::text[], $6::timestamptz, $7::timestamptz';
  /** Locks the rows of the tree below `$1` (those a concurrent revoke has not deleted), in id order. */
  const LOCK_TREE = `WITH RECURSIVE tree(id) AS (
      SELECT $1::text COLLATE "C"
      UNION
      SELECT c.id FROM ${tokens} c JOIN tree ON c.issuer_id = tree.id
    )
    SELECT id FROM ${tokens} WHERE id IN (SELECT id FROM tree) ORDER BY id FOR UPDATE`;

  const revokeOnce = (id: string) =>
    transaction(async (tx) => {
      // Each walk is a new snapshot (READ COMMITTED) taken after the previous walk's locks: a
      // token inserted under a locked row committed before that lock, so the next walk sees it.
      // Locked rows stay, so the tree only grows; it is whole once a walk finds nothing new.
      let locked = 0;
      let tree: string[] = [];
      for (;;) {
        tree = (await tx.query<{ id: string }>(LOCK_TREE, [id])).map((r) => r.id);
        if (tree.length === locked) break;
        locked = tree.length;
      }
      if (tree.length === 0) return [];
      const rows = await tx.query<{ id: string; live: boolean }>(
        `DELETE FROM ${tokens} WHERE id = ANY($1::text[]) RETURNING id, ${LIVE} AS live`,
        [tree],
      );
      if (!rows.some((r) => r.id === id && r.live)) return [];
      return [id, ...rows.filter((r) => r.live && r.id !== id).map((r) => r.id)];
    });

  return {
    async insert(token) {
      const params = [
        token.id,
        token.hash,
        token.identity,
        token.scopes,
        token.resources,
        token.createdAt,
        token.expiresAt,
      ];
      if (token.issuerId === null) {
        await query(`${INSERT} VALUES (${VALUES}, NULL)`, params);
        return true;
      }
      const inserted = await query(
        `WITH issuer AS (SELECT id FROM ${tokens} WHERE id = $8 AND ${LIVE} FOR KEY SHARE)
         ${INSERT} SELECT ${VALUES}, issuer.id FROM issuer RETURNING 1`,
        [...params, token.issuerId],
      );
      return inserted.length === 1;
    },
    async findByHash(hash) {
      const [row] = await query<TokenRow>(`SELECT ${COLUMNS} FROM ${tokens} WHERE hash = $1 AND ${LIVE}`, [
        hash,
      ]);
      return row && { ...info(row), hash: row.hash };
    },
    async findById(id) {
      const [row] = await query<TokenRow>(`SELECT ${COLUMNS} FROM ${tokens} WHERE id = $1 AND ${LIVE}`, [id]);
      return row && info(row);
    },
    async revoke(id) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await revokeOnce(id);
        } catch (error) {
          const state = (error as { cause?: { code?: unknown } }).cause?.code;
          if (state !== '40P01' || attempt >= REVOKE_ATTEMPTS) throw error;
        }
      }
    },
    async page(after, limit, within) {
      const params: unknown[] = [limit + 1];
      const where = [LIVE];
      if (after !== undefined) {
        const { createdAt, id } = parseTokenPosition(after);
        params.push(createdAt, id);
        where.push(`(created_at, id) > ($${params.length - 1}::timestamptz, $${params.length}::text)`);
      }
      if (within !== undefined) {
        params.push(likePatterns(within));
        // Every glob of the token, read as text, matched by one of the caller's (lineage.covers).
        where.push(
          `NOT EXISTS (SELECT 1 FROM unnest(resources) r WHERE NOT (r LIKE ANY($${params.length}::text[])))`,
        );
      }
      const rows = await query<TokenRow>(
        `SELECT ${COLUMNS} FROM ${tokens} WHERE ${where.join(' AND ')} ORDER BY created_at, id LIMIT $1`,
        params,
      );
      return pageOf(rows.map(info), limit, tokenPosition);
    },
  };
}

// ---------------------------------------------------------------------------------------

type AuditRow = {
  id: string;
  at: number;
  identity: string;
  action: string;
  resource: string | null;
  correlation_id: string | null;
  outcome: AuditEntry['outcome'];
  details: string | null;
};

function pgAudit(config: StorageConfig, t: Table, query: Query): AuditDriver {
  const audit = t('audit_log');
  const COLUMNS = `id::text AS id, ${ms('at')} AS at, identity, action, resource, correlation_id, outcome, details`;
  const view = (r: AuditRow): AuditEntry => ({
    id: r.id,
    at: iso(num(r.at)),
    identity: r.identity,
    action: r.action,
    resource: r.resource,
    correlationId: r.correlation_id,
    outcome: r.outcome,
    details: r.details === null ? null : (parseJson(r.details) as AuditEntry['details']),
  });
  const clamp = (value: number) => Math.min(Math.max(value, MIN_MS), MAX_MS);
  return {
    async append(e) {
      const [row] = await query<AuditRow>(
        `INSERT INTO ${audit} (at, identity, action, resource, correlation_id, outcome, details)
         VALUES (coalesce(${atMs('$7')}, ${NOW_MS}), $1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
        [e.identity, e.action, e.resource, e.correlationId, e.outcome, e.detailsJson, e.atMs ?? null],
      );
      return view(row!);
    },
    async query(q) {
      // Retention applies on read: entries past audit.maxAge or audit.maxEntries are never answered.
      const params: unknown[] = [config.audit.maxAge, config.audit.maxEntries, q.limit];
      const where = [
        `at >= now() - $1::float8 * interval '1 second'`,
        `id > (SELECT coalesce(max(id), 0) FROM ${audit}) - $2::bigint`,
      ];
      if (q.identity !== undefined) {
        params.push(q.identity);
        where.push(`identity = $${params.length}`);
      }
      if (q.sinceMs !== undefined) {
        params.push(clamp(q.sinceMs));
        where.push(`at >= to_timestamp($${params.length}::float8 / 1000)`);
      }
      if (q.untilMs !== undefined) {
        params.push(clamp(q.untilMs));
        where.push(`at < to_timestamp($${params.length}::float8 / 1000)`);
      }
      const order = q.order === 'asc' ? 'ASC' : 'DESC';
      const rows = await query<AuditRow>(
        // By the bigint column, not the text `id` of the select list: as text "10" sorts before "9".
        `SELECT ${COLUMNS} FROM ${audit} AS a WHERE ${where.join(' AND ')} ORDER BY a.id ${order} LIMIT $3`,
        params,
      );
      return rows.map(view);
    },
  };
}

// ---------------------------------------------------------------------------------------

type ConnectionRow = {
  identity: string;
  scopes: string[];
  resources: string[];
  token_id: string;
  token_expires: number | null;
  connected: number;
  expires: number;
  channels: string[];
};

/**
 * The WebSocket connection registry (0002_connections.sql, 0005_connection_tokens.sql).
 * `register` and `subscribe` are a transaction each: the first statement locks the connection's
 * row, so the second one (with a snapshot taken after the lock) sees every subscription
 * committed before it. That keeps a replaced registration from keeping a subscription made
 * concurrently, and the channel limit exact under concurrent subscribes of one connection. A
 * counted `register` first takes a transaction-scoped advisory lock on its token, so
 * registrations of one token count one after another and never pass the limit together.
 * Reads are one statement each.
 */
function pgConnections(t: Table, query: Query, transaction: Transaction): ConnectionDriver {
  const conns = t('ws_connections');
  const subs = t('ws_subscriptions');
  return {
    async register(c, maxPerToken) {
      const row = await transaction(async (tx) => {
        if (maxPerToken !== undefined) {
          // Two int4 keys: a space apart from the migrations' bigint lock.
          await tx.query('SELECT pg_advisory_xact_lock(hashtext($1::text), hashtext($2::text))', [
            conns,
            c.tokenId,
          ]);
          const [count] = await tx.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM ${conns}
             WHERE token_id = $1 AND connection_id <> $2 AND expires_at > now()`,
            [c.tokenId, c.connectionId],
          );
          if (num(count?.n ?? 0) >= maxPerToken) return undefined;
        }
        const [row] = await tx.query<{ connected: number; expires: number }>(
          `INSERT INTO ${conns} (connection_id, identity, scopes, resources, token_id, token_expires_at,
             connected_at, expires_at)
           VALUES ($1, $2, $3::text[], $4::text[], $5, ${atMs('$6')}, ${NOW_MS}, ${NOW_MS} + ${msInterval('$7')})
           ON CONFLICT (connection_id) DO UPDATE SET identity = EXCLUDED.identity, scopes = EXCLUDED.scopes,
             resources = EXCLUDED.resources, token_id = EXCLUDED.token_id,
             token_expires_at = EXCLUDED.token_expires_at, connected_at = EXCLUDED.connected_at,
             expires_at = EXCLUDED.expires_at
           RETURNING ${ms('connected_at')} AS connected, ${ms('expires_at')} AS expires`,
          [c.connectionId, c.identity, c.scopes, c.resources, c.tokenId, c.tokenExpiresAtMs, c.ttlMs],
        );
        await tx.query(`DELETE FROM ${subs} WHERE connection_id = $1`, [c.connectionId]);
        return row!;
      });
      if (row === undefined) return 'full';
      return {
        connectionId: c.connectionId,
        identity: c.identity,
        scopes: [...c.scopes],
        resources: [...c.resources],
        tokenId: c.tokenId,
        tokenExpiresAt: c.tokenExpiresAtMs === null ? null : iso(c.tokenExpiresAtMs),
        connectedAt: iso(num(row.connected)),
        expiresAt: iso(num(row.expires)),
        channels: [],
      };
    },
    async get(id) {
      const [row] = await query<ConnectionRow>(
        `SELECT identity, scopes, resources, token_id, ${ms('token_expires_at')} AS token_expires,
           ${ms('connected_at')} AS connected, ${ms('expires_at')} AS expires,
           ARRAY(SELECT s.channel FROM ${subs} s WHERE s.connection_id = c.connection_id ORDER BY s.channel) AS channels
         FROM ${conns} c WHERE connection_id = $1 AND expires_at > now()`,
        [id],
      );
      if (!row) return undefined;
      return {
        connectionId: id,
        identity: row.identity,
        scopes: row.scopes as Connection['scopes'],
        resources: row.resources,
        tokenId: row.token_id,
        tokenExpiresAt: nullableMs(row.token_expires),
        connectedAt: iso(num(row.connected)),
        expiresAt: iso(num(row.expires)),
        channels: row.channels,
      };
    },
    async subscribe(id, channel, maxChannels) {
      return transaction(async (tx) => {
        const live = await tx.query(
          `SELECT 1 FROM ${conns} WHERE connection_id = $1 AND expires_at > now() FOR NO KEY UPDATE`,
          [id],
        );
        if (live.length === 0) return 'unknown';
        const [row] = await tx.query<{ has: boolean; inserted: number }>(
          `WITH n AS (
             SELECT count(*)::int AS n, coalesce(bool_or(channel = $2::text), false) AS has
             FROM ${subs} WHERE connection_id = $1::text
           ), i AS (
             INSERT INTO ${subs} (channel, connection_id)
             SELECT $2::text, $1::text FROM n WHERE NOT n.has AND n.n < $3::int
             RETURNING 1
           )
           SELECT n.has, (SELECT count(*) FROM i)::int AS inserted FROM n`,
          [id, channel, maxChannels],
        );
        return row?.has === true || num(row?.inserted ?? 0) > 0 ? 'subscribed' : 'full';
      });
    },
    async unsubscribe(id, channel) {
      const [row] = await query<{ live: boolean }>(
        `WITH d AS (DELETE FROM ${subs} WHERE connection_id = $1 AND channel = $2 RETURNING connection_id)
         SELECT EXISTS (
           SELECT 1 FROM d JOIN ${conns} c ON c.connection_id = d.connection_id WHERE c.expires_at > now()
         ) AS live`,
        [id, channel],
      );
      return row?.live === true;
    },
    async subscribers(channel, after, limit) {
      const rows = await query<{ connection_id: string }>(
        `SELECT s.connection_id FROM ${subs} s JOIN ${conns} c ON c.connection_id = s.connection_id
         WHERE s.channel = $1 AND s.connection_id > $2 AND c.expires_at > now()
         ORDER BY s.connection_id LIMIT $3`,
        [channel, after ?? '', limit + 1],
      );
      const ids = rows.map((r) => r.connection_id);
      return { connectionIds: ids.slice(0, limit), more: ids.length > limit };
    },
    async remove(id) {
      const [row] = await query<{ live: boolean }>(
        `DELETE FROM ${conns} WHERE connection_id = $1 RETURNING expires_at > now() AS live`,
        [id],
      );
      return row?.live === true;
    },
    async byToken(tokenId, after, limit) {
      const rows = await query<{ connection_id: string }>(
        `SELECT connection_id FROM ${conns}
         WHERE token_id = $1 AND connection_id > $2 AND expires_at > now()
         ORDER BY connection_id LIMIT $3`,
        [tokenId, after ?? '', limit + 1],
      );
      const ids = rows.map((r) => r.connection_id);
      return { connectionIds: ids.slice(0, limit), more: ids.length > limit };
    },
    async withExpiredToken(limit) {
      const rows = await query<{ connection_id: string }>(
        `SELECT connection_id FROM ${conns}
         WHERE token_expires_at IS NOT NULL AND token_expires_at <= now() AND expires_at > now()
         ORDER BY token_expires_at LIMIT $1`,
        [limit],
      );
      return rows.map((r) => r.connection_id);
    },
  };
}
