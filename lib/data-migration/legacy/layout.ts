/**
 * The upstream Kubently layout as this import reads it: its well-known keys, what each key name
 * is (`classifyLegacyKey`), the scopes imported tokens get, the reasons items are skipped for,
 * and the parsing of its Python-written JSON and times. `legacy.ts` describes the mapping.
 */
import { SCOPES } from '../../storage/types.js';

/** The channel the legacy session events are imported into. */
export const SESSION_EVENTS = 'session:events';
/** The audit lists, in the order they are imported. */
export const AUDIT_LISTS = ['auth:audit', 'auth:audit:enhanced'] as const;

/** What an executor token may do: its cluster's queues, events, kv, and reading sessions. */
export const EXECUTOR_SCOPES = [
  'queues:send',
  'queues:receive',
  'events:publish',
  'events:subscribe',
  'kv:read',
  'kv:write',
  'sessions:read',
];
/** What a legacy API key may do: everything but administration, as it could upstream. */
export const API_KEY_SCOPES: string[] = SCOPES.filter((scope) => scope !== 'admin');

export const executorResources = (cluster: string) => [
  cluster,
  `${cluster}:*`,
  `*:${cluster}`,
  `*:${cluster}:*`,
];

/** Key families that stay behind, as the kv store's skipped reasons name them. */
export const NOT_MIGRATED_FAMILIES = [
  'metrics:*',
  'queue:commands:*',
  'command:tracking:*',
  'kubently:ckpt:*',
  'kubently:incidents:*',
] as const;
export const UNRECOGNISED = 'unrecognised keys';
export const notMigrated = (family: string) => `not migrated (${family})`;

/** Entries of the legacy session indexes that name no live session (sessions store, skipped). */
export const STALE_REASONS = {
  active: 'stale index entry: sessions:active member without a live session',
  cluster: 'stale index entry: cluster:session:* naming no live session',
  correlation: 'stale index entry: correlation:*:sessions member without a live session',
} as const;

export const SKIP_REASONS = {
  expired: 'expired',
  unreadableSession: 'session JSON does not parse',
  noCluster: 'session without cluster_id',
  wrongType: 'not a string key',
  badApiKeyName: 'api:key:* name is not a lowercase SHA-256',
  emptyToken: 'empty token value',
  sharedSecret: 'same secret as another legacy token (kept the first)',
  unreadableAudit: 'audit entry JSON does not parse',
} as const;

/** Legacy token keys and the ids their imported tokens get. */
export const TOKEN_KEYS = {
  executor: 'executor:token:',
  apiKey: 'api:key:',
  executorId: 'legacy-executor:',
  apiKeyId: 'legacy-api-key:',
} as const;

export const isWrongType = (error: unknown): boolean =>
  error instanceof Error && /WRONGTYPE/.test(error.message);

const AUDIT_LIST_NAMES: readonly string[] = AUDIT_LISTS;

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):?(\d{2})(?::?(\d{2}))?)?$/i;

/**
 * Epoch ms of a Python `isoformat()` timestamp: microseconds or none, `+HH:MM` (or `Z`), and a
 * naive timestamp read as UTC. Undefined when it is not one.
 */
export function parseIsoTime(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = ISO.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, , sign, oh, om, os] = m;
  const ms = frac ? Number(frac.padEnd(3, '0').slice(0, 3)) : 0;
  const utc = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0), ms);
  if (Number.isNaN(utc) || Number(mo) > 12 || Number(d) > 31 || Number(h) > 23 || Number(mi) > 59)
    return undefined;
  const offset = sign ? (Number(oh) * 3600 + Number(om) * 60 + Number(os ?? 0)) * 1000 : 0;
  return sign === '-' ? utc + offset : utc - offset;
}

export function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** The text itself when it is JSON, else the text as a JSON string. */
export const asJson = (text: string) => (parseJson(text).ok ? text : JSON.stringify(text));

export const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

export const textOrNull = (v: unknown): string | null =>
  v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v);

export const add = (skipped: Record<string, number>, reason: string, n = 1) => {
  if (n > 0) skipped[reason] = (skipped[reason] ?? 0) + n;
};

export type LegacyKind =
  | { store: 'kv'; family: 'active' | 'capabilities' | 'result' | 'command' }
  | { store: 'sessions' | 'session-index' | 'tokens' | 'events' | 'audit' }
  | { store: 'skip'; family: string };

/** What a legacy key name (without the prefix) is. */
export function classifyLegacyKey(name: string): LegacyKind {
  const after = (head: string) => name.length > head.length && name.startsWith(head);
  if (name === SESSION_EVENTS) return { store: 'events' };
  if (AUDIT_LIST_NAMES.includes(name)) return { store: 'audit' };
  if (
    name === 'sessions:active' ||
    after('cluster:session:') ||
    (after('correlation:') && name.endsWith(':sessions') && name.length > 'correlation::sessions'.length)
  )
    return { store: 'session-index' };
  if (after('session:')) return { store: 'sessions' };
  if (after('executor:token:') || after('api:key:')) return { store: 'tokens' };
  if (after('cluster:active:')) return { store: 'kv', family: 'active' };
  if (
    name.startsWith('cluster:') &&
    name.endsWith(':capabilities') &&
    name.length > 'cluster::capabilities'.length
  )
    return { store: 'kv', family: 'capabilities' };
  if (after('result:')) return { store: 'kv', family: 'result' };
  if (after('command:cluster:')) return { store: 'kv', family: 'command' };
  for (const family of NOT_MIGRATED_FAMILIES)
    if (name.startsWith(family.slice(0, -1))) return { store: 'skip', family };
  return { store: 'skip', family: UNRECOGNISED };
}
