/**
 * The SQL seam: the only thing the PostgreSQL backend and the migrator know of a database.
 * Three drivers implement it: `pg` (node-postgres: RDS, Aurora, any Postgres), `neon` (the
 * Neon serverless driver's WebSocket Pool) and `pglite` (WASM Postgres in this process).
 *
 * Results come back as plain rows. Drivers differ in how they decode types (node-postgres and
 * Neon answer `int8` as a string, PGlite as a bigint), so statements cast what they return to
 * `float8`, `int4`, `text` or `bool`, which every driver decodes the same way (as do `text[]`
 * parameters and results, `jsonb` and null).
 */
import { createHash } from 'node:crypto';
import type { PGlite } from '@electric-sql/pglite';
import type { StorageConfig } from '../../config/index.js';
import { BackendUnavailableError, StorageError } from '../../errors.js';
import { type MetricSink, report } from '../../metrics.js';
import type { PoolUse } from '../types.js';
import { unresolvedHostError } from '../unresolved-host.js';
import {
  hearsNotify,
  listenBehindPooler,
  lostPreparedStatement,
  sharesServerSessions,
  startupParameterRefused,
} from './pooler.js';

export type Row = Record<string, unknown>;
export type SqlDriverName = StorageConfig['postgresql']['driver'];

/** Runs statements: the whole database, or one transaction's connection. */
export interface SqlExecutor {
  /** One statement with `$1…` parameters; answers its rows. */
  query<R extends Row = Row>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** Several statements separated by `;`, without parameters (migration files). */
  script(text: string): Promise<void>;
}

/** Called with each notification's payload; `onReconnect` after a lost listening connection is back. */
export interface Listener {
  onNotify(payload: string): void;
  onReconnect(): void;
  /** The listening connection dropped: nothing is heard until `onReconnect`. */
  onDisconnect?(): void;
}

export interface Sql extends SqlExecutor {
  readonly driver: SqlDriverName;
  /** Runs `fn` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * LISTEN on `channel` (a plain identifier) over one long-lived connection shared by every
   * listener of this Sql; answers a function that stops listening. Absent when the driver or
   * the configuration cannot listen: callers poll instead.
   */
  readonly listen?: (channel: string, listener: Listener) => Promise<() => Promise<void>>;
  /** The pool's use now (pg and Neon; absent for PGlite, one connection in this process). */
  readonly poolUse?: () => PoolUse;
  /**
   * Whether the server lends its sessions per transaction (a transaction pooler between): see
   * `sharesServerSessions`. Absent for PGlite (no server between).
   */
  readonly detectTransactionPooler?: () => Promise<boolean>;
  close(): Promise<void>;
}

/** Quotes an identifier (schema, table) for SQL text: `a"b` → `"a""b"`. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

// ---------------------------------------------------------------------------------------
// errors

/** SQLSTATEs that mean "try again": connection loss, shutdown, overload, timeouts, lock conflicts. */
const RETRYABLE_STATE = /^(08|53|57P0[1-5]|57014|40001|40P01|55P03)/;
/** SQLSTATEs that mean the schema is missing or older than this code. */
const MISSING_SCHEMA_STATE = /^(42P01|3F000|42703|42883|42704)$/;
const TRANSIENT_MESSAGE =
  /connection terminated|connection (is )?closed|timeout|timed out|socket hang up|not queryable|Client has encountered a connection error|WebSocket|ECONN|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN/i;

/**
 * Maps a driver error to a typed one: connection trouble → `BackendUnavailableError`
 * (retryable; a host name that does not exist is not: see unresolved-host.ts); a schema
 * without this code's tables → `BackendUnavailableError` saying to run migrations; other
 * database refusals → `BackendUnavailableError` (not retryable).
 * Typed storage errors pass through unchanged.
 */
export function mapSqlError(error: unknown, schema?: string): unknown {
  if (error instanceof StorageError) return error;
  const unresolved = unresolvedHostError('postgresql', error, 'postgresql.url (DATABASE_URL)');
  if (unresolved) return unresolved;
  if (isErrorEvent(error)) {
    // The Neon driver rejects with the WebSocket's error event (not an Error) when it cannot
    // reach the WebSocket endpoint: the network failure is inside.
    const cause = error.error instanceof Error ? error.error : undefined;
    const message = cause?.message || error.message || 'WebSocket error';
    return new BackendUnavailableError('postgresql', `WebSocket: ${message}`, { cause: cause ?? error });
  }
  if (!(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  // Node's errno codes (EPIPE, ECONNREFUSED…) are connection trouble; no SQLSTATE class starts with E.
  const errno = typeof code === 'string' && /^E[A-Z]+$/.test(code);
  const state = typeof code === 'string' && !errno && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  if (state !== undefined && MISSING_SCHEMA_STATE.test(state)) {
    const where = schema === undefined ? 'the database' : `schema ${JSON.stringify(schema)}`;
    return new BackendUnavailableError(
      'postgresql',
      `${where} is not migrated to this version: run migrations (npm run migrate:schema, or postgresql.migrate: true)`,
      { cause: error, retryable: false },
    );
  }
  // The backend prepares statements only by name at the protocol level, never with PREPARE: these
  // two mean a named statement's session changed under it.
  if (state === '26000' || state === '42P05') return lostPreparedStatement(error, state);
  if (state === '08P01' && /unsupported startup parameter/i.test(error.message))
    return startupParameterRefused(error);
  if (state !== undefined) {
    return new BackendUnavailableError('postgresql', `${error.message} (SQLSTATE ${state})`, {
      cause: error,
      retryable: RETRYABLE_STATE.test(state),
    });
  }
  if (errno || TRANSIENT_MESSAGE.test(error.message)) {
    return new BackendUnavailableError('postgresql', error.message || String(code), { cause: error });
  }
  if (error instanceof AggregateError && error.errors.length > 0) {
    // node-postgres answers a refused dual-stack connect with an AggregateError of the attempts.
    const first = error.errors[0] as Error;
    return new BackendUnavailableError('postgresql', first.message || 'connection failed', { cause: error });
  }
  return error;
}

/** A DOM-style `ErrorEvent` (the `ws` package's, or a global WebSocket's): `{ type: 'error', error?, message? }`. */
function isErrorEvent(value: unknown): value is { type: 'error'; error?: unknown; message?: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    !(value instanceof Error) &&
    (value as { type?: unknown }).type === 'error' &&
    ('error' in value || 'message' in value)
  );
}

// ---------------------------------------------------------------------------------------
// transactions

/**
 * Runs a transaction's body. A failed statement aborts the transaction, and Postgres answers
 * the COMMIT of an aborted transaction by rolling back without an error: a body that caught a
 * statement's error and resolved would look committed. So when a statement failed, one more
 * statement checks the transaction is still alive (it is after `ROLLBACK TO SAVEPOINT`); if not,
 * the statement's error is thrown and the transaction rolls back as for any other error.
 */
async function runTransactionBody<T>(tx: SqlExecutor, fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
  let failed: { error: unknown } | undefined;
  const noteFailure = (error: unknown): never => {
    failed ??= { error };
    throw error;
  };
  const result = await fn({
    query: <R extends Row>(text: string, params?: readonly unknown[]) =>
      tx.query<R>(text, params).catch(noteFailure),
    script: (text) => tx.script(text).catch(noteFailure),
  });
  if (failed !== undefined) {
    const { error } = failed;
    await tx.query('SELECT 1').catch(() => {
      throw error;
    });
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// pg and neon: the same Pool/Client API (the Neon driver is a node-postgres fork)

/** A statement for node-postgres: text, or a named (server-side prepared) statement. */
type QueryInput = string | { name: string; text: string; values: unknown[] | undefined };

interface PoolLike {
  query(query: QueryInput, params?: unknown[]): Promise<{ rows: Row[] }>;
  connect(): Promise<PoolClientLike>;
  end(): Promise<void>;
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
  readonly options: { max?: number };
  on(event: 'error', listener: (error: Error) => void): unknown;
}
type NotificationListener = (message: { channel: string; payload?: string }) => void;
interface PoolClientLike {
  query(query: QueryInput, params?: unknown[]): Promise<{ rows: Row[] }>;
  release(destroy?: boolean | Error): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'notification', listener: NotificationListener): unknown;
  removeListener(event: 'notification', listener: NotificationListener): unknown;
}
interface ClientLike {
  connect(): Promise<unknown>;
  query(text: string): Promise<{ rows: Row[] }>;
  end(): Promise<void>;
  on(event: 'notification', listener: NotificationListener): unknown;
  on(event: 'error' | 'end', listener: (error?: Error) => void): unknown;
  removeListener(event: 'notification', listener: NotificationListener): unknown;
}

interface PoolDriverParts {
  name: 'pg' | 'neon';
  pool: PoolLike;
  /** A new unpooled connection (for LISTEN, and for the pooler check when the pool holds one). */
  newClient: () => ClientLike;
  /** LISTEN/NOTIFY as a wake-up (`postgresql.listen`). */
  listen: boolean;
  /** Prepare each statement once per connection (named statements) instead of on every call. */
  prepare: boolean;
  /** Check a connection idle this long before using it; the check gives up after `checkTimeoutMs`. */
  idleCheckMs: number;
  checkTimeoutMs: number;
}

/**
 * Statement names by text. The backend's statements are a fixed set of texts, so a connection
 * prepares each once and later calls skip parsing and planning; the names are stable across
 * connections and processes.
 */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `kst_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    if (statementNames.size < 10_000) statementNames.set(text, name);
  }
  return name;
}

/**
 * A pooled connection unused for this long is checked (`SELECT 1`) before a statement goes out
 * on it. A Lambda container frozen between invocations, or a Neon compute that scaled to zero,
 * leaves connections that look open but are gone; a write sent on one might or might not have
 * run, so it is better never sent there.
 */
const IDLE_CHECK_MS = 20_000;

function poolSql({
  name,
  pool,
  newClient,
  listen,
  prepare,
  idleCheckMs,
  checkTimeoutMs,
}: PoolDriverParts): Sql {
  // Errors of idle pooled connections (server restart, network) surface on the next query instead.
  pool.on('error', () => {});
  const lastUsed = new WeakMap<PoolClientLike, number>();
  /** A pooled connection known to work: one idle for long is checked first, replaced when dead. */
  const guarded = new WeakSet<PoolClientLike>();
  /** Whether `client` can take a statement now: guarded, and not idle long enough to need a check. */
  const fresh = (client: PoolClientLike): boolean => {
    // A server-side kill (pg_terminate_backend, a failover) that lands while the connection is
    // checked out but between statements is emitted as 'error' on the client, which the pool
    // only listens to while the connection is idle: unhandled, it would end the process. The
    // error still reaches the caller through the statement it breaks.
    if (!guarded.has(client)) {
      guarded.add(client);
      client.on('error', () => {});
    }
    const last = lastUsed.get(client);
    return last === undefined || Date.now() - last < idleCheckMs;
  };
  /** A connection that was idle long: checked, and replaced (twice at most) when dead. */
  const checked = async (idle: PoolClientLike): Promise<PoolClientLike> => {
    let client = idle;
    for (let attempt = 0; attempt < 2; attempt++) {
      // The check gets its own deadline (the Neon client has no per-query timeout).
      const check = client.query('SELECT 1');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('connection check timed out')), checkTimeoutMs);
      });
      try {
        await Promise.race([check, deadline]);
        return client;
      } catch (error) {
        check.catch(() => {});
        client.release(error as Error);
      } finally {
        clearTimeout(timer);
      }
      client = await pool.connect();
      if (fresh(client)) return client;
    }
    return client;
  };
  const checkout = async (): Promise<PoolClientLike> => {
    const client = await pool.connect();
    return fresh(client) ? client : checked(client);
  };
  const release = (client: PoolClientLike, broken?: Error) => {
    if (broken === undefined) lastUsed.set(client, Date.now());
    client.release(broken ?? false);
  };
  /** Runs `use` on a checked-out connection; a connection that failed at the socket is not reused. */
  const withClient = async <T>(use: (client: PoolClientLike) => Promise<T>): Promise<T> => {
    const client = await checkout();
    try {
      const result = await use(client);
      release(client);
      return result;
    } catch (error) {
      release(client, isConnectionError(error) ? (error as Error) : undefined);
      throw error;
    }
  };
  const executor = (run: PoolClientLike): SqlExecutor => ({
    async query<R extends Row>(text: string, params?: readonly unknown[]) {
      const values = params as unknown[] | undefined;
      const result = prepare
        ? await run.query({ name: statementName(text), text, values })
        : await run.query(text, values);
      return result.rows as R[];
    },
    async script(text) {
      await run.query(text);
    },
  });
  const onPool: SqlExecutor = {
    // withClient and executor inlined: this is every statement's path, and each closure or
    // promise layer on it is a measurable part of a sub-millisecond call.
    async query<R extends Row>(text: string, params?: readonly unknown[]) {
      let client = await pool.connect();
      if (!fresh(client)) client = await checked(client);
      const values = params as unknown[] | undefined;
      try {
        const result = prepare
          ? await client.query({ name: statementName(text), text, values })
          : await client.query(text, values);
        release(client);
        return result.rows as R[];
      } catch (error) {
        release(client, isConnectionError(error) ? (error as Error) : undefined);
        throw error;
      }
    },
    script: (text) => withClient((client) => executor(client).script(text)),
  };
  /** NOTIFY from a pooled connection; answers whether that connection heard it itself. */
  const notifyFromPool = (channel: string, payload: string) =>
    withClient(async (client) => {
      let heard = false;
      const onNotification: NotificationListener = (message) => {
        if (message.channel === channel) heard = true;
      };
      client.on('notification', onNotification);
      try {
        await executor(client).query('SELECT pg_notify($1, $2)', [channel, payload]);
        return heard;
      } finally {
        client.removeListener('notification', onNotification);
      }
    });
  const hub = listen ? listenHub(newClient, notifyFromPool, checkTimeoutMs) : undefined;
  return {
    driver: name,
    ...onPool,
    async transaction(fn) {
      const client = await checkout();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await runTransactionBody(executor(client), fn);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError as Error;
        }
        throw error;
      } finally {
        // A connection that failed to roll back is in an unknown state: close it, never reuse it.
        release(client, broken);
      }
    },
    listen: hub?.listen,
    poolUse: () => ({
      inUse: pool.totalCount - pool.idleCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
      max: pool.options.max ?? null,
    }),
    async detectTransactionPooler() {
      // Two pooled connections when the pool has room (both stay for later use), else one of
      // its own; opened at once, so the check costs one connection set-up, not two.
      const own = (pool.options.max ?? 1) < 2 ? newClient() : undefined;
      own?.on('error', () => {});
      const opened = await Promise.allSettled([checkout(), own ? own.connect().then(() => own) : checkout()]);
      const [first, second] = opened.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
      let broken: Error | undefined;
      try {
        for (const r of opened) if (r.status === 'rejected') throw r.reason;
        return await sharesServerSessions(first as PoolClientLike, second as PoolClientLike | ClientLike);
      } catch (error) {
        broken = error as Error;
        throw error;
      } finally {
        if (first) release(first as PoolClientLike, broken);
        if (own) await own.end().catch(() => {});
        else if (second) release(second as PoolClientLike, broken);
      }
    },
    async close() {
      await hub?.close();
      await pool.end();
    },
  };
}

/** An error of the connection itself (not of a statement): the connection is not to be reused. */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return /^(08|57P0[1-3])/.test(code) || /^E[A-Z]+$/.test(code);
  return error instanceof Error && /connection|terminated|socket|closed/i.test(error.message);
}

/**
 * One LISTEN connection shared by every listener: opened on first use, reopened with back-off
 * when it drops (listeners then hear `onReconnect`, since notifications sent meanwhile are lost).
 */
function listenHub(
  newClient: () => ClientLike,
  notify: (channel: string, payload: string) => Promise<boolean>,
  probeTimeoutMs: number,
) {
  const listeners = new Map<string, Set<Listener>>();
  let client: ClientLike | undefined;
  let connecting: Promise<ClientLike> | undefined;
  let closed = false;
  /** Set once a connection did not hear its probe: LISTEN cannot work here, so it is not tried again. */
  let refused: Error | undefined;
  let retryTimer: NodeJS.Timeout | undefined;

  const connect = (): Promise<ClientLike> => {
    connecting ??= (async () => {
      const connection = newClient();
      connection.on('notification', (message) => {
        for (const l of listeners.get(message.channel) ?? []) l.onNotify(message.payload ?? '');
      });
      let dropped = false;
      const drop = () => {
        if (dropped) return;
        dropped = true;
        const wasListening = client === connection;
        if (wasListening) client = undefined;
        connecting = undefined;
        connection.end().catch(() => {});
        if (wasListening) for (const set of listeners.values()) for (const l of set) l.onDisconnect?.();
        if (!closed && refused === undefined && listeners.size > 0) scheduleReconnect(100);
      };
      connection.on('error', drop);
      connection.on('end', drop);
      try {
        await connection.connect();
        // Before any LISTEN that matters: behind a transaction pooler it would be lost silently.
        if (!(await hearsNotify(connection, notify, probeTimeoutMs))) refused = listenBehindPooler();
        if (refused) throw refused;
        for (const channel of listeners.keys()) await connection.query(`LISTEN ${quoteIdent(channel)}`);
      } catch (error) {
        drop();
        throw mapSqlError(error);
      }
      client = connection;
      return connection;
    })();
    return connecting;
  };
  const scheduleReconnect = (delayMs: number) => {
    if (retryTimer !== undefined) return;
    retryTimer = setTimeout(async () => {
      retryTimer = undefined;
      if (closed || refused || listeners.size === 0) return;
      try {
        await connect();
        for (const set of listeners.values()) for (const l of set) l.onReconnect();
      } catch {
        scheduleReconnect(Math.min(delayMs * 2, 5000));
      }
    }, delayMs);
    retryTimer.unref();
  };

  return {
    async listen(channel: string, listener: Listener) {
      if (closed)
        throw new BackendUnavailableError('postgresql', 'this connection is closed', { retryable: false });
      if (refused) throw refused;
      let set = listeners.get(channel);
      const first = set === undefined;
      if (!set) {
        set = new Set();
        listeners.set(channel, set);
      }
      set.add(listener);
      try {
        const connection = await connect();
        if (first) await connection.query(`LISTEN ${quoteIdent(channel)}`);
      } catch (error) {
        set.delete(listener);
        if (set.size === 0) listeners.delete(channel);
        throw mapSqlError(error);
      }
      return async () => {
        const current = listeners.get(channel);
        if (!current?.delete(listener) || current.size > 0) return;
        listeners.delete(channel);
        await client?.query(`UNLISTEN ${quoteIdent(channel)}`).catch(() => {});
      };
    },
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      listeners.clear();
      const closing = client;
      client = undefined;
      // A connection still being opened is ended once it is, without holding up close().
      connecting?.then((late) => late.end()).catch(() => {});
      await closing?.end().catch(() => {});
    },
  };
}

function poolOptions(config: StorageConfig['postgresql']) {
  return {
    connectionString: config.url,
    max: config.poolSize,
    min: config.minPoolSize,
    connectionTimeoutMillis: Math.round(config.connectTimeout * 1000),
    idleTimeoutMillis: 60_000,
    // Server-side bound on each statement, plus a client-side one for a server that stopped
    // answering. The server-side one is a startup parameter, which PgBouncer refuses (and a
    // session setting would not outlive the transaction there): behind a transaction pooler the
    // role's or the pooler's own timeout applies (docs/reliability.md).
    ...(config.pooler === 'transaction'
      ? {}
      : { statement_timeout: Math.round(config.commandTimeout * 1000) }),
    query_timeout: Math.round(config.commandTimeout * 1000) + 1000,
    keepAlive: true,
    application_name: 'kubently-storage',
  };
}

async function createPgSql(config: StorageConfig['postgresql'], sqlOptions: SqlOptions): Promise<Sql> {
  const pg = (await import('pg')).default;
  const options = poolOptions(config);
  return poolSql({
    name: 'pg',
    pool: new pg.Pool(options) as unknown as PoolLike,
    newClient: () => new pg.Client(options) as unknown as ClientLike,
    listen: config.listen,
    prepare: config.preparedStatements,
    ...idleCheck(config, sqlOptions),
  });
}

async function createNeonSql(config: StorageConfig['postgresql'], sqlOptions: SqlOptions): Promise<Sql> {
  const neon = await import('@neondatabase/serverless');
  // Node 20 has no global WebSocket; Lambda's Node 22 does, but one implementation everywhere is simpler.
  const ws = (await import('ws')).default;
  const proxy = config.wsProxy?.replace(/\/+$/, '');
  // A proxy on this machine is the local development setup: plain ws:// unless told otherwise.
  const secure =
    config.secureWebSocket ??
    !(proxy !== undefined && /^(127\.0\.0\.1|localhost|\[::1\])(:|\/|$)/.test(proxy));
  /**
   * Settings go on each connection's socket, never on the global `neonConfig`: two Sqls in one
   * process (e.g. different proxies) would otherwise overwrite each other's.
   */
  class ConfiguredClient extends neon.Client {
    constructor(clientConfig?: ConstructorParameters<typeof neon.Client>[0]) {
      super(clientConfig);
      const socket = this.neonConfig;
      socket.webSocketConstructor = ws as never;
      socket.useSecureWebSocket = secure;
      if (proxy !== undefined) {
        socket.wsProxy = (host, port) => `${proxy}?address=${host}:${port}`;
        // A plain local proxy: no TLS, no pipelined startup, and no write coalescing (it adds ~1 ms per query).
        socket.pipelineConnect = false;
        socket.coalesceWrites = false;
      }
    }
  }
  const options = poolOptions(config);
  const pool = new neon.Pool(options);
  // The Neon Pool ignores a `Client` option (it sets its own after construction): replace it here.
  pool.Client = ConfiguredClient;
  return poolSql({
    name: 'neon',
    pool: pool as unknown as PoolLike,
    newClient: () => new ConfiguredClient(options) as unknown as ClientLike,
    listen: config.listen,
    prepare: config.preparedStatements,
    ...idleCheck(config, sqlOptions),
  });
}

// ---------------------------------------------------------------------------------------
// pglite

export interface PgliteSqlOptions {
  /** Use this PGlite instead of opening one; `close()` leaves it open. */
  instance?: PGlite;
}

async function createPgliteSql(config: StorageConfig['postgresql'], options: PgliteSqlOptions): Promise<Sql> {
  let db = options.instance;
  const owned = db === undefined;
  if (db === undefined) {
    const { PGlite } = await import('@electric-sql/pglite');
    db = await PGlite.create(config.dataDir ?? 'memory://');
  }
  const instance = db;
  const executor = (run: Pick<PGlite, 'query' | 'exec'>): SqlExecutor => ({
    async query<R extends Row>(text: string, params?: readonly unknown[]) {
      const result = await run.query<R>(text, params as unknown[] | undefined);
      return result.rows;
    },
    async script(text) {
      await run.exec(text);
    },
  });
  return {
    driver: 'pglite',
    ...executor(instance),
    transaction: (fn) => instance.transaction((tx) => runTransactionBody(executor(tx), fn)),
    listen: config.listen
      ? async (channel, listener) => {
          // PGlite sends `LISTEN ${channel}` as given: quoted, so the channel keeps its case as on
          // pg and neon. Its own unsubscribe function cannot find a quoted channel again (it
          // looks the name up lowercased): unlisten by the quoted name instead.
          const name = quoteIdent(channel);
          const callback = (payload: string) => listener.onNotify(payload);
          await instance.listen(name, callback);
          return async () => {
            if (!instance.closed) await instance.unlisten(name, callback);
          };
        }
      : undefined,
    async close() {
      if (owned && !instance.closed) await instance.close();
    },
  };
}

// ---------------------------------------------------------------------------------------

export interface SqlOptions {
  pglite?: PgliteSqlOptions;
  /** `pg`, `neon`: check a pooled connection idle this long before use (default 20 s). */
  idleCheckMs?: number;
}

function idleCheck(config: StorageConfig['postgresql'], options: SqlOptions) {
  return {
    idleCheckMs: options.idleCheckMs ?? IDLE_CHECK_MS,
    checkTimeoutMs: Math.round(config.connectTimeout * 1000),
  };
}

/**
 * Opens the configured driver. Connection failures surface on the first statement (as
 * `BackendUnavailableError`), not here: pools connect lazily.
 */
export async function createSql(config: StorageConfig['postgresql'], options: SqlOptions = {}): Promise<Sql> {
  switch (config.driver) {
    case 'pg':
      return createPgSql(config, options);
    case 'neon':
      return createNeonSql(config, options);
    case 'pglite':
      return createPgliteSql(config, options.pglite ?? {});
  }
}

/** SQLSTATE of a statement PostgreSQL aborted to break a deadlock. */
const DEADLOCK_STATE = '40P01';

/**
 * Wraps every method so driver errors come out typed (see `mapSqlError`). A deadlock is mapped
 * like any lock conflict (retryable) and counted: `Deadlocks` on `metrics`.
 */
export function withErrorMapping(sql: Sql, schema: string, metrics?: MetricSink): Sql {
  const mapError = sqlErrorMapper(schema, metrics);
  const map = (error: unknown): never => {
    throw mapError(error);
  };
  const wrap = (executor: SqlExecutor): SqlExecutor => ({
    query: <R extends Row>(text: string, params?: readonly unknown[]) =>
      executor.query<R>(text, params).catch(map),
    script: (text) => executor.script(text).catch(map),
  });
  return {
    driver: sql.driver,
    ...wrap(sql),
    transaction: (fn) => sql.transaction((tx) => fn(wrap(tx))).catch(map),
    listen: sql.listen && ((channel, listener) => sql.listen!(channel, listener).catch(map)),
    poolUse: sql.poolUse,
    detectTransactionPooler: sql.detectTransactionPooler && (() => sql.detectTransactionPooler!().catch(map)),
    close: () => sql.close(),
  };
}

/** `mapSqlError` for `schema`, counting deadlocks on `metrics` (see `withErrorMapping`). */
export function sqlErrorMapper(schema: string, metrics?: MetricSink): (error: unknown) => unknown {
  return (error) => {
    // Typed errors were counted where they were mapped (a transaction rethrows its statement's).
    if (!(error instanceof StorageError) && (error as { code?: unknown } | null)?.code === DEADLOCK_STATE) {
      report(metrics, { name: 'Deadlocks', value: 1, unit: 'Count', dimensions: { backend: 'postgresql' } });
    }
    return mapSqlError(error, schema);
  };
}
