/**
 * The embedded PostgreSQL behind `npm start`: one PGlite (WASM Postgres) on disk, migrated in
 * this process, then served over the PostgreSQL wire protocol on 127.0.0.1 so that every
 * serverless-offline worker (each function runs in its own worker thread, with its own module
 * scope and its own `pg` pool) reaches the same database with the ordinary `pg` driver.
 *
 * Why not `PGLiteSocketServer` from `@electric-sql/pglite-socket` as it is: PGlite is one
 * backend (one session), and that server interleaves the wire messages of its connections one
 * message at a time. node-postgres sends a statement as Parse/Bind/Describe/Execute/Sync, so
 * another connection's messages can land between them, and named prepared statements (the
 * library prepares each statement once per connection, under a name derived from its text)
 * collide: the second connection's Parse fails with `prepared statement "kst_…" already
 * exists`. This server instead:
 *
 * - gives the backend to one connection at a time, from its first message until the backend
 *   says it is idle again (ReadyForQuery `I`): a whole extended-protocol exchange, and a whole
 *   transaction, run without interleaving; other connections wait their turn (FIFO);
 * - renames each connection's prepared statements into a namespace of its own (`c<n>_<name>`)
 *   and deallocates them when it disconnects;
 * - rolls back what a connection left open when it disconnects, and ends a connection that
 *   stays idle inside a transaction for longer than `idleInTransactionTimeoutMs` (it would hold
 *   every other connection up);
 * - does not carry NOTIFY between connections (one backend: a notification comes out wherever
 *   it happens to be produced); the postgresql backend polls at `postgresql.pollInterval`.
 *
 * The data directory is locked (`<dataDir>/kubently.lock`, holding the owner's pid) so that a
 * second instance fails with a clear message instead of opening the same files twice.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { configFromEnv } from '../lib/config/index.js';
import {
  applySchemaMigrations,
  type SchemaMigrationResult,
} from '../lib/storage/postgresql/schema-migrations.js';
import { createSql } from '../lib/storage/postgresql/sql.js';

export interface EmbeddedPostgresOptions {
  /** Folder holding the database (`<dataDir>/pglite`) and the lock file; created when missing. */
  dataDir: string;
  /** Port on 127.0.0.1; 0 (default) lets the system pick a free one. */
  port?: number;
  /** Schema to migrate (default: `postgresql.schema`'s default, `kubently`). */
  schema?: string;
  /** A connection idle inside a transaction this long is ended (default 30 s). */
  idleInTransactionTimeoutMs?: number;
}

export interface EmbeddedPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  /** What the migration runner applied on this start. */
  migrations: SchemaMigrationResult;
  /** Stops accepting connections, ends the open ones, closes PGlite and releases the lock. */
  close(): Promise<void>;
}

/** Another process holds the data directory. */
export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `the data directory ${dataDir} is in use by another running instance (pid ${pid}). ` +
        'Stop that one first, or give this one its own directory with KUBENTLY_DATA_DIR=<dir> ' +
        `(if no such instance is running, delete ${join(dataDir, 'kubently.lock')}).`,
    );
    this.name = 'DataDirLockedError';
  }
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const { dataDir } = options;
  mkdirSync(dataDir, { recursive: true });
  const releaseLock = lockDataDir(dataDir);
  let db: PGlite | undefined;
  let server: Server | undefined;
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    db = await PGlite.create(join(dataDir, 'pglite'));

    const config = configFromEnv(
      {},
      {
        backend: 'postgresql',
        postgresql: {
          driver: 'pglite',
          listen: false,
          ...(options.schema ? { schema: options.schema } : {}),
        },
      },
    ).postgresql;
    // The instance is lent: closing this Sql leaves PGlite open.
    const sql = await createSql(config, { pglite: { instance: db } });
    let migrations: SchemaMigrationResult;
    try {
      migrations = await applySchemaMigrations(sql, { schema: config.schema });
    } finally {
      await sql.close();
    }

    const wire = new WireServer(db, options.idleInTransactionTimeoutMs ?? 30_000);
    server = createServer((socket) => wire.accept(socket));
    const listening = server;
    const port = await new Promise<number>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(options.port ?? 0, '127.0.0.1', () => {
        listening.off('error', reject);
        const address = listening.address();
        resolve(typeof address === 'object' && address !== null ? address.port : 0);
      });
    });

    const openDb = db;
    let closing: Promise<void> | undefined;
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      port,
      migrations,
      close() {
        closing ??= (async () => {
          const closed = new Promise<void>((resolve) => listening.close(() => resolve()));
          await wire.closeAll();
          await closed;
          await openDb.close();
          releaseLock();
        })();
        return closing;
      },
    };
  } catch (error) {
    server?.close();
    await db?.close().catch(() => {});
    releaseLock();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------
// the data directory lock

/** Lock files this process holds (a container restarted may reuse the pid written in an old one). */
const heldLocks = new Set<string>();

/** Takes `<dataDir>/kubently.lock` (exclusive create); a lock whose process is gone is taken over. */
function lockDataDir(dataDir: string): () => void {
  const file = resolve(dataDir, 'kubently.lock');
  if (heldLocks.has(file)) throw new DataDirLockedError(dataDir, process.pid);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      heldLocks.add(file);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        heldLocks.delete(file);
        rmSync(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let pid = Number.NaN;
    try {
      pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
    } catch {
      // Removed meanwhile: try again.
    }
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new DataDirLockedError(dataDir, pid);
    }
    // Left by a process that is gone (killed, machine restarted): stale.
    rmSync(file, { force: true });
  }
  throw new Error(`could not lock the data directory ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---------------------------------------------------------------------------------------
// the wire protocol server

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;

/** One backend shared by every connection, handed to one connection at a time. */
class WireServer {
  private owner: Connection | undefined;
  private readonly waiting: Array<{ connection: Connection; grant: () => void }> = [];
  private readonly connections = new Set<Connection>();
  private nextId = 1;
  private closed = false;

  constructor(
    readonly db: PGlite,
    readonly idleInTransactionTimeoutMs: number,
  ) {}

  accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const connection = new Connection(this, socket, this.nextId++);
    this.connections.add(connection);
    socket.once('close', () => this.connections.delete(connection));
  }

  /** Resolves when `connection` owns the backend. */
  acquire(connection: Connection): Promise<void> {
    if (this.owner === connection) return Promise.resolve();
    if (this.owner === undefined) {
      this.owner = connection;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiting.push({ connection, grant: resolve });
    });
  }

  release(connection: Connection): void {
    if (this.owner !== connection) return;
    const next = this.waiting.shift();
    this.owner = next?.connection;
    next?.grant();
  }

  /** Connections that LISTEN on a channel (the backend's own LISTEN state is shared by all of them). */
  listeners(channel: string): Connection[] {
    return [...this.connections].filter((c) => c.listensTo(channel));
  }

  /** Drops a connection's place in the queue (it disconnected while waiting). */
  forget(connection: Connection): void {
    const index = this.waiting.findIndex((w) => w.connection === connection);
    if (index >= 0) this.waiting.splice(index, 1);
  }

  async closeAll(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.connections].map((c) => c.end()));
  }
}

class Connection {
  private buffer: Buffer = Buffer.alloc(0);
  private started = false;
  private processing = false;
  private ending: Promise<void> | undefined;
  /** Status of the backend's last ReadyForQuery for this connection: I idle, T in a transaction, E failed one. */
  private status = 'I';
  private readonly prefix: string;
  private readonly statements = new Set<string>();
  private readonly channels = new Set<string>();
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly server: WireServer,
    private readonly socket: Socket,
    id: number,
  ) {
    this.prefix = `c${id}_`;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      void this.process();
    });
    socket.on('error', () => {});
    socket.on('close', () => void this.end());
  }

  private async process(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.ending === undefined) {
        const message = this.takeMessage();
        if (message === undefined) break;
        await this.handle(message);
      }
    } catch {
      void this.end();
    } finally {
      this.processing = false;
    }
  }

  /** The next complete message of the buffer, if there is one. */
  private takeMessage(): Buffer | undefined {
    const b = this.buffer;
    let length: number;
    if (!this.started) {
      if (b.length < 4) return undefined;
      length = b.readInt32BE(0);
    } else {
      if (b.length < 5) return undefined;
      length = b.readInt32BE(1) + 1;
    }
    if (b.length < length) return undefined;
    this.buffer = b.subarray(length);
    return b.subarray(0, length);
  }

  private async handle(message: Buffer): Promise<void> {
    if (!this.started) {
      const code = message.length >= 8 ? message.readInt32BE(4) : 0;
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        this.socket.write('N');
        return;
      }
      if (code === CANCEL_REQUEST) {
        // No backend process to signal: nothing to cancel.
        this.socket.end();
        return;
      }
      if (code !== PROTOCOL_3) {
        this.socket.destroy();
        return;
      }
      this.started = true;
      await this.run(message);
      return;
    }
    const type = String.fromCharCode(message[0]!);
    if (type === 'X') {
      await this.end();
      return;
    }
    const listen = type === 'Q' ? parseListen(message.toString('utf8', 5, message.length - 1)) : undefined;
    await this.run(this.rename(type, message));
    if (listen !== undefined) await this.noteListen(listen);
  }

  listensTo(channel: string): boolean {
    return this.channels.has(channel);
  }

  /** Delivers a NotificationResponse message (as the backend produced it) to this client. */
  notify(message: Buffer): void {
    if (this.ending === undefined && this.socket.writable) this.socket.write(message);
  }

  /**
   * Keeps track of what this connection listens to. The backend has one LISTEN state for all
   * connections, so after an UNLISTEN the channels other connections still want are listened to again.
   */
  private async noteListen({
    unlisten,
    channel,
  }: {
    unlisten: boolean;
    channel: string | undefined;
  }): Promise<void> {
    if (!unlisten) {
      if (channel !== undefined) this.channels.add(channel);
      return;
    }
    const dropped = channel === undefined ? [...this.channels] : [channel];
    for (const c of dropped) this.channels.delete(c);
    await this.relisten(dropped);
  }

  /** LISTENs again, on the backend, to those of `channels` another connection still listens to. */
  private async relisten(channels: string[]): Promise<void> {
    const wanted = channels.filter((c) => this.server.listeners(c).some((other) => other !== this));
    if (wanted.length === 0) return;
    await this.server.acquire(this);
    try {
      await this.server.db.exec(wanted.map((c) => `LISTEN ${quoteIdent(c)};`).join('\n'));
    } finally {
      if (this.status === 'I') this.server.release(this);
    }
  }

  /** Runs one message on the backend, owning it until the backend is idle again. */
  private async run(message: Buffer): Promise<void> {
    clearTimeout(this.idleTimer);
    await this.server.acquire(this);
    if (this.ending !== undefined) return;
    const chunks: Uint8Array[] = [];
    const { db } = this.server;
    await db.runExclusive(() =>
      db.execProtocolRawStream(new Uint8Array(message.buffer, message.byteOffset, message.length), {
        onRawData: (data) => chunks.push(data.slice()),
      }),
    );
    const { output, ready, notifications } = splitOutput(Buffer.concat(chunks));
    if (ready !== undefined) this.status = ready;
    if (output.length > 0 && this.socket.writable) this.socket.write(output);
    for (const { channel, message: notification } of notifications) {
      for (const listener of this.server.listeners(channel)) listener.notify(notification);
    }
    if (ready === 'I') {
      this.server.release(this);
    } else if (ready !== undefined && this.server.idleInTransactionTimeoutMs > 0) {
      // Idle inside a transaction: every other connection waits on this one.
      this.idleTimer = setTimeout(() => void this.end(), this.server.idleInTransactionTimeoutMs);
      this.idleTimer.unref();
    }
  }

  /** Puts this connection's prepared statement names into its own namespace. */
  private rename(type: string, message: Buffer): Buffer {
    switch (type) {
      case 'P': {
        // Parse: name\0 query\0 …
        const end = message.indexOf(0, 5);
        if (end <= 5) return message;
        const name = message.toString('utf8', 5, end);
        this.statements.add(name);
        return replaceString(message, 5, end, this.prefix + name);
      }
      case 'B': {
        // Bind: portal\0 statement\0 …
        const portalEnd = message.indexOf(0, 5);
        const end = message.indexOf(0, portalEnd + 1);
        if (end <= portalEnd + 1) return message;
        return replaceString(
          message,
          portalEnd + 1,
          end,
          this.prefix + message.toString('utf8', portalEnd + 1, end),
        );
      }
      case 'D':
      case 'C': {
        // Describe / Close: 'S' name\0 (a statement) or 'P' name\0 (a portal)
        if (message[5] !== 0x53) return message;
        const end = message.indexOf(0, 6);
        if (end <= 6) return message;
        const name = message.toString('utf8', 6, end);
        if (type === 'C') this.statements.delete(name);
        return replaceString(message, 6, end, this.prefix + name);
      }
      default:
        return message;
    }
  }

  /** Ends the connection: rolls back what it left open, forgets its statements, frees the backend. */
  end(): Promise<void> {
    this.ending ??= (async () => {
      clearTimeout(this.idleTimer);
      this.socket.destroy();
      this.server.forget(this);
      if (!this.started) return;
      await this.server.acquire(this);
      const { db } = this.server;
      try {
        if (this.status !== 'I') {
          // Finish any half-sent extended-protocol exchange, then roll back.
          await db.runExclusive(() => db.execProtocolRaw(new Uint8Array([0x53, 0, 0, 0, 4])));
          await db.exec('ROLLBACK').catch(() => {});
        }
        if (this.channels.size > 0) {
          const channels = [...this.channels];
          this.channels.clear();
          await db.exec('UNLISTEN *;').catch(() => {});
          const still = channels.filter((c) => this.server.listeners(c).length > 0);
          if (still.length > 0)
            await db.exec(still.map((c) => `LISTEN ${quoteIdent(c)};`).join('\n')).catch(() => {});
        }
        if (this.statements.size > 0) {
          const names = [...this.statements].map((name) => `DEALLOCATE ${quoteIdent(this.prefix + name)};`);
          await db.exec(names.join('\n')).catch(() => {});
        }
      } catch {
        // PGlite is closing or closed.
      } finally {
        this.server.release(this);
      }
    })();
    return this.ending;
  }
}

function replaceString(message: Buffer, start: number, end: number, value: string): Buffer {
  const out = Buffer.concat([message.subarray(0, start), Buffer.from(value, 'utf8'), message.subarray(end)]);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}

/**
 * A backend output split into what goes to the connection that asked, the status byte of its
 * last ReadyForQuery ('Z'), and the NotificationResponses ('A'), which go to the connections
 * that LISTEN on their channel instead.
 */
function splitOutput(output: Buffer): {
  output: Buffer;
  ready: string | undefined;
  notifications: Array<{ channel: string; message: Buffer }>;
} {
  let ready: string | undefined;
  const notifications: Array<{ channel: string; message: Buffer }> = [];
  const kept: Buffer[] = [];
  let offset = 0;
  while (offset + 5 <= output.length) {
    const type = output[offset]!;
    const end = offset + 1 + output.readInt32BE(offset + 1);
    const message = output.subarray(offset, end);
    if (type === 0x5a && message.length > 5) ready = String.fromCharCode(message[5]!);
    if (type === 0x41) {
      // NotificationResponse: int32 pid, channel\0, payload\0
      const channelEnd = message.indexOf(0, 9);
      notifications.push({ channel: message.toString('utf8', 9, channelEnd), message });
    } else {
      kept.push(message);
    }
    offset = end;
  }
  if (offset < output.length) kept.push(output.subarray(offset));
  return { output: notifications.length === 0 ? output : Buffer.concat(kept), ready, notifications };
}

/** `LISTEN x` / `UNLISTEN x` / `UNLISTEN *` as one simple query (how LISTEN is sent), else undefined. */
function parseListen(text: string): { unlisten: boolean; channel: string | undefined } | undefined {
  const match = /^\s*(UN)?LISTEN\s+("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*|\*)\s*;?\s*$/i.exec(text);
  if (match === null) return undefined;
  const unlisten = match[1] !== undefined;
  const raw = match[2]!;
  if (raw === '*') return unlisten ? { unlisten, channel: undefined } : undefined;
  const channel = raw.startsWith('"') ? raw.slice(1, -1).replaceAll('""', '"') : raw.toLowerCase();
  return { unlisten, channel };
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
