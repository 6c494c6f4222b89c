/**
 * Noticing a transaction pooler the configuration does not know about (docs/reliability.md).
 *
 * A pooler in transaction mode (PgBouncer `pool_mode = transaction`, a Neon `-pooler` endpoint)
 * lends a server session to a client for one transaction, then to whoever asks next. What a
 * session keeps between transactions is then lost or someone else's: a named prepared statement
 * (`prepared statement "kst_…" does not exist` / `already exists`), and a LISTEN (its
 * notifications reach whichever client holds that session at the time: silently lost). So the
 * backend checks what it relies on, once, and names the setting to change:
 *
 * - prepared statements: two connections report their server process (`pg_backend_pid()`),
 *   see `sharesServerSessions`; and SQLSTATE 26000/42P05 on a statement is mapped to the
 *   same error (`lostPreparedStatement`), for a pooler the first check did not catch;
 * - LISTEN: the listening connection must hear a NOTIFY sent from another connection, see
 *   `hearsNotify`. When it does not, waits poll instead and `health()` says why.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { PoolerMismatchError } from '../../errors.js';

const SETTING = 'postgresql.pooler';
const FIX = `set ${SETTING}: transaction (POSTGRES_POOLER=transaction)`;

/** A connection the checks send statements on, in order. */
export interface ProbeConnection {
  query(text: string): Promise<{ rows: Record<string, unknown>[] }>;
}

/**
 * Whether two open connections are served by one server session, i.e. the sessions are lent per
 * transaction. A direct connection (or a session-mode pooler) keeps one server process per
 * connection for its whole life: two open connections never report the same `pg_backend_pid()`
 * and one connection never reports two. Behind a transaction pooler, the session `first` just
 * gave back is the one lent next (PgBouncer hands out the most recently used), so `second`,
 * inside a transaction, reports `first`'s process; and when another client took that session,
 * `first` reports a different process on its next statement. So it never raises a false alarm;
 * on a busy pooler it can miss, which `lostPreparedStatement` covers.
 */
export async function sharesServerSessions(
  first: ProbeConnection,
  second: ProbeConnection,
): Promise<boolean> {
  const pid = async (connection: ProbeConnection) =>
    Number((await connection.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
  // PGlite served over a socket (npm start's embedded server, local/embedded-postgres.ts) is one
  // session for every connection, and keeps each connection's prepared statements apart itself.
  const version = String((await first.query('SELECT version() AS version')).rows[0]?.version);
  if (version.includes('(PGlite ')) return false;
  const before = await pid(first);
  // In a transaction, `second` holds its server session until COMMIT, whatever the pooler.
  await second.query('BEGIN');
  try {
    if ((await pid(second)) === before) return true;
    return (await pid(first)) !== before;
  } finally {
    await second.query('COMMIT');
  }
}

/** A connection that can LISTEN (node-postgres and Neon clients are EventEmitters). */
export interface ListeningConnection {
  query(text: string): Promise<unknown>;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  removeListener(
    event: 'notification',
    listener: (message: { channel: string; payload?: string }) => void,
  ): unknown;
}

/**
 * Whether `listening` hears a NOTIFY that `notify` sends from another connection within
 * `timeoutMs`. `notify` answers true when its own connection heard it: the pooler gave it the
 * listening session, a sure sign without waiting. On a direct connection an idle listener hears
 * a notification within milliseconds of the commit.
 */
export async function hearsNotify(
  listening: ListeningConnection,
  notify: (channel: string, payload: string) => Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const channel = `kst_probe_${randomBytes(8).toString('hex')}`;
  const payload = randomUUID();
  let heard: () => void = () => {};
  const arrived = new Promise<true>((resolve) => {
    heard = () => resolve(true);
  });
  const onNotification = (message: { channel: string; payload?: string }) => {
    if (message.channel === channel && message.payload === payload) heard();
  };
  listening.on('notification', onNotification);
  let timer: NodeJS.Timeout | undefined;
  try {
    await listening.query(`LISTEN ${channel}`);
    if (await notify(channel, payload)) return false;
    return await Promise.race([
      arrived,
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    listening.removeListener('notification', onNotification);
    // Behind a transaction pooler this may reach another session: the probe channel is never used again.
    await listening.query(`UNLISTEN ${channel}`).catch(() => {});
  }
}

/** Prepared statements are on, and `sharesServerSessions` found a transaction pooler. */
export function preparedStatementsBehindPooler(): PoolerMismatchError {
  return new PoolerMismatchError(
    SETTING,
    'connected through a transaction pooler (two connections were served by one server session), ' +
      `where prepared statements break: ${FIX}, or postgresql.preparedStatements: false`,
  );
}

/** SQLSTATE 26000 or 42P05 on a named statement: its session changed under it. */
export function lostPreparedStatement(error: Error, state: string): PoolerMismatchError {
  return new PoolerMismatchError(
    SETTING,
    `${error.message} (SQLSTATE ${state}): the server session changed under a prepared statement, ` +
      `as behind a transaction pooler: ${FIX}, leaving postgresql.preparedStatements unset or false`,
    { cause: error },
  );
}

/**
 * PgBouncer refused a startup parameter (SQLSTATE 08P01 `unsupported startup parameter`): the
 * `statement_timeout` the pool sends unless `postgresql.pooler` is `transaction`.
 */
export function startupParameterRefused(error: Error): PoolerMismatchError {
  return new PoolerMismatchError(
    SETTING,
    `${error.message}: a PgBouncer is in between. In transaction mode ${FIX}; in session mode add ` +
      'statement_timeout to its ignore_startup_parameters',
    { cause: error },
  );
}

/** `hearsNotify` failed: LISTEN cannot work on this connection. */
export function listenBehindPooler(): PoolerMismatchError {
  return new PoolerMismatchError(
    SETTING,
    'LISTEN does not hear a NOTIFY from another connection (a transaction pooler lends the listening ' +
      'session to other clients): long polls and subscriptions poll instead of being woken. ' +
      `To fix: ${FIX}, or postgresql.listen: false`,
  );
}
