/**
 * One multi-row statement per table for a batch of each store (`unnest` of one array per
 * column, so a batch of any size is a fixed number of parameters), as upserts keyed by the
 * store's own id: a batch written twice leaves one row per item.
 */
import type { SqlExecutor } from '../../storage/postgresql/sql.js';
import { idOf, type RecordOf, type StoreName, splitPairId } from '../records.js';

/** An event channel's last id to carry over (see `SourceBatch.counters`). */
export interface ChannelCounter {
  channel: string;
  lastId: number;
}

/** Where a writer writes: a transaction, and the schema's tables (`table` quotes a name in it). */
export interface WriteContext {
  tx: SqlExecutor;
  table: (name: string) => string;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Writer<S extends StoreName> = (
  ctx: WriteContext,
  rs: RecordOf[S][],
  counters: ChannelCounter[],
) => Promise<void>;

export const WRITERS: { [S in StoreName]: Writer<S> } = {
  async kv({ tx, table }, rs) {
    await tx.query(
      `INSERT INTO ${table('kv_store')} (key, value, expires_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
      [rs.map((r) => r.key), rs.map((r) => r.value), rs.map((r) => iso(r.expiresAtMs))],
    );
  },
  async sessions({ tx, table }, rs) {
    await tx.query(
      `INSERT INTO ${table('sessions')} (session_id, cluster_id, user_id, correlation_id, service_identity, data,
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
  },
  async tokens({ tx, table }, rs) {
    // A re-issued token keeps its hash under a new id only if the old id is gone first.
    await tx.query(
      `DELETE FROM ${table('tokens')} WHERE hash = ANY($1::text[]) AND NOT (id = ANY($2::text[]))`,
      [rs.map((r) => r.hash), rs.map((r) => r.id)],
    );
    await tx.query(
      `INSERT INTO ${table('tokens')} (id, hash, identity, scopes, resources, created_at, expires_at, issuer_id)
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
  },
  async connections({ tx, table }, rs) {
    await tx.query(
      `INSERT INTO ${table('ws_connections')} (connection_id, identity, scopes, resources, token_id, token_expires_at,
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
    await tx.query(`DELETE FROM ${table('ws_subscriptions')} WHERE connection_id = ANY($1::text[])`, [ids]);
    const pairs = rs.flatMap((r) => r.channels.map((channel) => [channel, r.connectionId] as const));
    if (pairs.length > 0) {
      await tx.query(
        `INSERT INTO ${table('ws_subscriptions')} (channel, connection_id)
         SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING`,
        [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
      );
    }
  },
  async queues({ tx, table }, records) {
    const rs = records.filter((r) => UUID.test(r.id));
    if (rs.length === 0) return;
    // Inserted in the source's FIFO order: the target's sequence keeps it. A leased message gets
    // a receipt of its own (a lease is `receipt IS NOT NULL`, migrations/0007): the source's
    // holder cannot ack it here, and it comes back when its lease ends, as on the source.
    await tx.query(
      `INSERT INTO ${table('queues')} (id, queue, payload, state, attempts, receipt, enqueued_at, visible_at, died_at)
       SELECT id, queue, payload, state, attempts,
         CASE WHEN state = 'leased' THEN gen_random_uuid() END, enqueued_at, visible_at, died_at
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[],
         $7::timestamptz[], $8::timestamptz[]) WITH ORDINALITY
         AS u(id, queue, payload, state, attempts, enqueued_at, visible_at, died_at, ord)
       ORDER BY ord
       ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload, state = EXCLUDED.state,
         attempts = EXCLUDED.attempts, receipt = EXCLUDED.receipt, visible_at = EXCLUDED.visible_at,
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
  },
  async dedup({ tx, table }, records) {
    const rs = records.filter((r) => UUID.test(r.messageId));
    if (rs.length === 0) return;
    await tx.query(
      `INSERT INTO ${table('queue_dedup')} (queue, dedup_id, message_id, expires_at)
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
  },
  async events({ tx, table }, rs, counters) {
    if (rs.length > 0) {
      await tx.query(
        `INSERT INTO ${table('events')} (channel, id, message, published_at)
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
      `INSERT INTO ${table('event_channels')} AS c (channel, last_id)
       SELECT * FROM unnest($1::text[], $2::bigint[])
       ON CONFLICT (channel) DO UPDATE SET last_id = GREATEST(c.last_id, EXCLUDED.last_id)`,
      [[...last.keys()], [...last.values()]],
    );
  },
  async audit({ tx, table }, rs) {
    // Appended in the source's order: the target's ids follow it.
    await tx.query(
      `INSERT INTO ${table('audit_log')} (at, identity, action, resource, correlation_id, outcome, details)
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
  },
};

/** Keeps the last record of each id: one statement cannot upsert a row twice. */
function lastOfEach<S extends StoreName>(store: S, records: RecordOf[S][]): RecordOf[S][] {
  const byId = new Map<string, RecordOf[S]>();
  for (const record of records) {
    const id = idOf(store, record);
    byId.delete(id);
    byId.set(id, record);
  }
  return [...byId.values()];
}

/** Writes a batch of `store` (audit entries as they come: each is new here, see `records.ts`). */
export async function writeRecords<S extends StoreName>(
  ctx: WriteContext,
  store: S,
  input: RecordOf[S][],
  counters: ChannelCounter[] = [],
): Promise<void> {
  if (input.length === 0 && counters.length === 0) return;
  const write: Writer<S> = WRITERS[store];
  await write(ctx, store === 'audit' ? input : lastOfEach(store, input), counters);
}

/** Deletes items by id (`idOf`): the copy's verification found them gone from the source. */
export async function removeRecords(
  sql: SqlExecutor,
  table: (name: string) => string,
  store: StoreName,
  ids: string[],
): Promise<void> {
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
      await sql.query(`DELETE FROM ${table('ws_connections')} WHERE connection_id = ANY($1::text[])`, [ids]);
      return;
    case 'queues':
      await sql.query(`DELETE FROM ${table('queues')} WHERE id = ANY($1::uuid[])`, [
        ids.map((id) => splitPairId(id)[1]).filter((id) => UUID.test(id)),
      ]);
      return;
    default:
      throw new Error(`${store}: items are not removed by a copy`);
  }
}
