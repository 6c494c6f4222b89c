import { type ConnectionDriver, isoTime as iso } from '../../driver.js';
import type { Connection } from '../../types.js';
import { atMs, ms, msInterval, NOW_MS, nullableMs, num, type StoreContext } from './context.js';

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
export function pgConnections(ctx: StoreContext): ConnectionDriver {
  const { table, query, transaction } = ctx;
  const conns = table('ws_connections');
  const subs = table('ws_subscriptions');
  return {
    async register(input, maxPerToken) {
      const row = await transaction(async (tx) => {
        if (maxPerToken !== undefined) {
          // Two int4 keys: a space apart from the migrations' bigint lock.
          await tx.query('SELECT pg_advisory_xact_lock(hashtext($1::text), hashtext($2::text))', [
            conns,
            input.tokenId,
          ]);
          const [count] = await tx.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM ${conns}
             WHERE token_id = $1 AND connection_id <> $2 AND expires_at > now()`,
            [input.tokenId, input.connectionId],
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
          [
            input.connectionId,
            input.identity,
            input.scopes,
            input.resources,
            input.tokenId,
            input.tokenExpiresAtMs,
            input.ttlMs,
          ],
        );
        await tx.query(`DELETE FROM ${subs} WHERE connection_id = $1`, [input.connectionId]);
        return row!;
      });
      if (row === undefined) return 'full';
      return {
        connectionId: input.connectionId,
        identity: input.identity,
        scopes: [...input.scopes],
        resources: [...input.resources],
        tokenId: input.tokenId,
        tokenExpiresAt: input.tokenExpiresAtMs === null ? null : iso(input.tokenExpiresAtMs),
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
