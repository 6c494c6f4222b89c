import { isoTime as iso, type SessionDriver } from '../../driver.js';
import { pageOf } from '../../paging.js';
import type { Session } from '../../types.js';
import { parseJson } from '../../validate.js';
import { likePatterns } from '../like.js';
import { atMs, ms, msInterval, NOW_MS, num, type StoreContext } from './context.js';

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

export function pgSessions(ctx: StoreContext): SessionDriver {
  const { table, query } = ctx;
  const sessions = table('sessions');
  const COLUMNS = `session_id, cluster_id, user_id, correlation_id, service_identity, data,
    ${ms('created_at')} AS created, ${ms('last_activity')} AS active, ${ms('expires_at')} AS expires`;
  const view = (row: SessionRow): Session => ({
    sessionId: row.session_id,
    clusterId: row.cluster_id,
    userId: row.user_id,
    correlationId: row.correlation_id,
    serviceIdentity: row.service_identity,
    data: parseJson(row.data) as Session['data'],
    createdAt: iso(num(row.created)),
    lastActivity: iso(num(row.active)),
    expiresAt: iso(num(row.expires)),
  });
  // The hot statements' texts are built once: a statement's name is looked up by its text per call.
  const NEW_COLUMNS = `session_id, cluster_id, user_id, correlation_id, service_identity, data, ttl_ms,
      created_at, last_activity, expires_at`;
  /**
   * A new session on this server's clock: only the times come back (the caller sent the rest),
   * and last activity is the creation time.
   */
  const CREATE_NOW = `INSERT INTO ${sessions} (${NEW_COLUMNS})
    VALUES ($1, $2, $3, $4, $5, $6, $7::float8, ${NOW_MS}, ${NOW_MS}, ${NOW_MS} + ${msInterval('$7')})
    RETURNING ${ms('created_at')} AS created, ${ms('expires_at')} AS expires`;
  /** A session with the times another backend gave it (a hybrid replay or mirror). */
  const CREATE = `INSERT INTO ${sessions} (${NEW_COLUMNS})
    VALUES ($1, $2, $3, $4, $5, $6, $7::float8,
      coalesce(${atMs('$8')}, ${NOW_MS}), coalesce(${atMs('$9')}, ${NOW_MS}),
      coalesce(${atMs('$10')}, ${NOW_MS} + ${msInterval('$7')}))
    RETURNING ${COLUMNS}`;
  const ACTIVE = `SELECT EXISTS (SELECT 1 FROM ${sessions} WHERE cluster_id = $1 AND expires_at > now()) AS active`;
  const many = async (column: string, value: string) =>
    (
      await query<SessionRow>(
        `SELECT ${COLUMNS} FROM ${sessions} WHERE ${column} = $1 AND expires_at > now()
         ORDER BY created_at, session_id`,
        [value],
      )
    ).map(view);
  return {
    async create(input) {
      const params = [
        input.sessionId,
        input.clusterId,
        input.userId,
        input.correlationId,
        input.serviceIdentity,
        input.dataJson,
        input.ttlMs,
      ];
      if (input.times === undefined) {
        const [row] = await query<{ created: number; expires: number }>(CREATE_NOW, params);
        const createdAt = iso(num(row!.created));
        return {
          sessionId: input.sessionId,
          clusterId: input.clusterId,
          userId: input.userId,
          correlationId: input.correlationId,
          serviceIdentity: input.serviceIdentity,
          data: parseJson(input.dataJson) as Session['data'],
          createdAt,
          lastActivity: createdAt,
          expiresAt: iso(num(row!.expires)),
        };
      }
      const [row] = await query<SessionRow>(CREATE, [
        ...params,
        input.times.createdAtMs ?? null,
        input.times.lastActivityMs,
        input.times.expiresAtMs,
      ]);
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
      const [row] = await query<{ active: boolean }>(ACTIVE, [clusterId]);
      return row?.active === true;
    },
  };
}
