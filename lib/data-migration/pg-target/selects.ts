/**
 * What the target's live items of each store are: the SELECT list, FROM clause, the condition
 * that leaves out expired and reserved rows, and the keyset column(s) scans page by. The column
 * names are the ones `rows.ts` decodes.
 */
import { RESERVED_KV_PREFIX, RESERVED_QUEUES, type StoreName } from '../records.js';

export interface StoreSelect {
  cols: string;
  from: string;
  live: string;
  /** The keyset column, or columns in parentheses. */
  key: string;
}

const msOf = (column: string) => `round(extract(epoch from ${column}) * 1000)::float8`;
const LIVE = (column: string) => `(${column} IS NULL OR ${column} > now())`;
const RESERVED_LIST = [...RESERVED_QUEUES].map((q) => `'${q}'`).join(', ');

/** Each store's select over the tables of one schema (`table` quotes a name in it). */
export function storeSelects(table: (name: string) => string): Record<StoreName, StoreSelect> {
  return {
    // The hybrid backend's own kv keys and journal queues are not data: never copied, never compared.
    kv: {
      cols: `key, value, ${msOf('expires_at')} AS e`,
      from: table('kv_store'),
      live: `${LIVE('expires_at')} AND NOT starts_with(key, '${RESERVED_KV_PREFIX}')`,
      key: 'key',
    },
    sessions: {
      cols: `session_id, cluster_id, user_id, correlation_id, service_identity, data, ttl_ms,
        ${msOf('created_at')} AS c, ${msOf('last_activity')} AS l, ${msOf('expires_at')} AS e`,
      from: table('sessions'),
      live: LIVE('expires_at'),
      key: 'session_id',
    },
    tokens: {
      cols: `id, hash, identity, scopes, resources, ${msOf('created_at')} AS c, ${msOf('expires_at')} AS e, issuer_id`,
      from: table('tokens'),
      live: LIVE('expires_at'),
      key: 'id',
    },
    connections: {
      cols: `connection_id, identity, scopes, resources, token_id, ${msOf('token_expires_at')} AS te,
        ${msOf('connected_at')} AS c, ${msOf('expires_at')} AS e,
        ARRAY(SELECT s.channel FROM ${table('ws_subscriptions')} s WHERE s.connection_id = x.connection_id ORDER BY s.channel) AS channels`,
      from: `${table('ws_connections')} x`,
      live: LIVE('expires_at'),
      key: 'connection_id',
    },
    queues: {
      // A lease is a receipt (migrations/0007); 'leased' rows written before it mean the same.
      cols: `id::text AS id, queue, payload, attempts, seq, ${msOf('enqueued_at')} AS en, ${msOf('visible_at')} AS v,
        ${msOf('died_at')} AS d,
        CASE WHEN state = 'dead' THEN 'dead' WHEN receipt IS NOT NULL OR state = 'leased' THEN 'leased' ELSE 'ready' END AS state`,
      from: table('queues'),
      live: `queue NOT IN (${RESERVED_LIST})`,
      key: 'id',
    },
    dedup: {
      cols: `queue, dedup_id, message_id::text AS message_id, ${msOf('expires_at')} AS e`,
      from: table('queue_dedup'),
      live: `${LIVE('expires_at')} AND queue NOT IN (${RESERVED_LIST})`,
      key: '(queue, dedup_id)',
    },
    events: {
      cols: `x.channel, x.id, x.message, ${msOf('x.published_at')} AS p,
        (SELECT c.last_id FROM ${table('event_channels')} c WHERE c.channel = x.channel) AS last_id`,
      from: `${table('events')} x`,
      live: 'true',
      key: '(x.channel, x.id)',
    },
    audit: {
      cols: `id, ${msOf('at')} AS at, identity, action, resource, correlation_id, outcome, details`,
      from: table('audit_log'),
      live: 'true',
      key: 'id',
    },
  };
}
