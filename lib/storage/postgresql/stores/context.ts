/** What every PostgreSQL store is built from, and the SQL fragments they share. */
import type { StorageConfig } from '../../../config/index.js';
import { type Expiry, isoTime as iso } from '../../driver.js';
import type { Wakeups } from '../notifications.js';
import type { Row, SqlExecutor } from '../sql.js';

export type Query = <R extends Row = Row>(text: string, params?: readonly unknown[]) => Promise<R[]>;
export type Transaction = <T>(fn: (tx: SqlExecutor) => Promise<T>) => Promise<T>;
/** A table of this storage's schema, quoted and schema-qualified. */
export type Table = (name: string) => string;

/** One per storage: what its stores share. */
export interface StoreContext {
  config: StorageConfig;
  table: Table;
  /** One statement, repeated once on a fresh connection when it only reads (see index.ts). */
  query: Query;
  transaction: Transaction;
  wakeups: Wakeups;
  /** NOTIFY channels of this schema. */
  channels: { queues: string; events: string };
  /** Set once the storage closes: waits end, new calls are refused. */
  state: { closed: boolean };
}

/** Milliseconds since the epoch of a timestamptz expression, as float8 (decoded alike by every driver). */
export const ms = (column: string) => `(extract(epoch from ${column}) * 1000)::float8`;
/** The current time, truncated to what the contract reports (ISO-8601 with milliseconds). */
export const NOW_MS = `date_trunc('milliseconds', now())`;
export const msInterval = (param: string) => `${param}::float8 * interval '1 millisecond'`;
/** An epoch-milliseconds parameter as a timestamptz, exact to the millisecond (NULL stays NULL). */
export const atMs = (param: string) => `(timestamptz 'epoch' + ${param}::float8 * interval '1 millisecond')`;
/** Ids and receipts as this backend writes them (lower case); anything else names no message. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Times outside Postgres's timestamptz range (and JavaScript's) are clamped to years 1–9999. */
export const MIN_MS = -62_135_596_800_000;
export const MAX_MS = 253_402_300_799_999;
/** Calls that one batched queue statement carries at most (see batcher.ts). */
export const MAX_BATCH = 500;
export const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
/** Batches one sweep deletes per table at most; the next sweep goes on. */
export const MAX_SWEEP_BATCHES = 100;

/** The SQL for an optional expiry: `[expression, params]` with the parameter numbered `n`. */
export function deadline(expiry: Expiry | undefined | null, n: number): [string, unknown[]] {
  if (!expiry) return ['NULL', []];
  if ('ttlMs' in expiry) return [`now() + ${msInterval(`$${n}`)}`, [expiry.ttlMs]];
  return [`to_timestamp($${n}::float8 / 1000)`, [Math.min(Math.max(expiry.atMs, MIN_MS), MAX_MS)]];
}

export const num = (value: unknown) => Number(value);
export const nullableMs = (value: unknown) =>
  value === null || value === undefined ? null : iso(num(value));
