import { type AuditDriver, isoTime as iso } from '../../driver.js';
import type { AuditEntry } from '../../types.js';
import { parseJson } from '../../validate.js';
import { atMs, MAX_MS, MIN_MS, ms, NOW_MS, num, type StoreContext } from './context.js';

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

export function pgAudit(ctx: StoreContext): AuditDriver {
  const { config, table, query } = ctx;
  const audit = table('audit_log');
  const COLUMNS = `id::text AS id, ${ms('at')} AS at, identity, action, resource, correlation_id, outcome, details`;
  const view = (row: AuditRow): AuditEntry => ({
    id: row.id,
    at: iso(num(row.at)),
    identity: row.identity,
    action: row.action,
    resource: row.resource,
    correlationId: row.correlation_id,
    outcome: row.outcome,
    details: row.details === null ? null : (parseJson(row.details) as AuditEntry['details']),
  });
  const clamp = (value: number) => Math.min(Math.max(value, MIN_MS), MAX_MS);
  return {
    async append(input) {
      const [row] = await query<AuditRow>(
        `INSERT INTO ${audit} (at, identity, action, resource, correlation_id, outcome, details)
         VALUES (coalesce(${atMs('$7')}, ${NOW_MS}), $1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
        [
          input.identity,
          input.action,
          input.resource,
          input.correlationId,
          input.outcome,
          input.detailsJson,
          input.atMs ?? null,
        ],
      );
      return view(row!);
    },
    async query(filter) {
      // Retention applies on read: entries past audit.maxAge or audit.maxEntries are never answered.
      const params: unknown[] = [config.audit.maxAge, config.audit.maxEntries, filter.limit];
      const where = [
        `at >= now() - $1::float8 * interval '1 second'`,
        `id > (SELECT coalesce(max(id), 0) FROM ${audit}) - $2::bigint`,
      ];
      if (filter.identity !== undefined) {
        params.push(filter.identity);
        where.push(`identity = $${params.length}`);
      }
      if (filter.sinceMs !== undefined) {
        params.push(clamp(filter.sinceMs));
        where.push(`at >= to_timestamp($${params.length}::float8 / 1000)`);
      }
      if (filter.untilMs !== undefined) {
        params.push(clamp(filter.untilMs));
        where.push(`at < to_timestamp($${params.length}::float8 / 1000)`);
      }
      const order = filter.order === 'asc' ? 'ASC' : 'DESC';
      const rows = await query<AuditRow>(
        // By the bigint column, not the text `id` of the select list: as text "10" sorts before "9".
        `SELECT ${COLUMNS} FROM ${audit} AS a WHERE ${where.join(' AND ')} ORDER BY a.id ${order} LIMIT $3`,
        params,
      );
      return rows.map(view);
    },
  };
}
