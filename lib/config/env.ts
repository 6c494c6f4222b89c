import { ConfigError } from '../errors.js';
import { resolveConfig, type StorageConfig, type StorageConfigInput } from './schema.js';

/** `list`: comma-separated, blanks around items ignored. */
type Kind = 'string' | 'number' | 'boolean' | 'list';

/** Environment variables and the fields they set (dotted paths of `StorageConfig`). */
export const ENV_FIELDS: ReadonlyArray<readonly [variable: string, field: string, kind: Kind]> = [
  ['STORAGE_BACKEND', 'backend', 'string'],
  ['KEY_PREFIX', 'keyPrefix', 'string'],
  ['REDIS_URL', 'redis.url', 'string'],
  ['REDIS_PASSWORD', 'redis.password', 'string'],
  ['REDIS_CLUSTER', 'redis.cluster', 'boolean'],
  ['REDIS_SENTINELS', 'redis.sentinels', 'list'],
  ['REDIS_SENTINEL_NAME', 'redis.sentinelName', 'string'],
  ['DATABASE_URL', 'postgresql.url', 'string'],
  ['POSTGRES_DRIVER', 'postgresql.driver', 'string'],
  ['POSTGRES_SCHEMA', 'postgresql.schema', 'string'],
  ['POSTGRES_POOLER', 'postgresql.pooler', 'string'],
  ['POSTGRES_LEASE_COMMIT', 'postgresql.leaseCommit', 'string'],
  ['NEON_WS_PROXY', 'postgresql.wsProxy', 'string'],
  ['BOOTSTRAP_TOKEN_HASH', 'auth.bootstrapTokenHash', 'string'],
  ['MAX_VALUE_BYTES', 'limits.maxValueBytes', 'number'],
  ['QUEUE_MAX_ATTEMPTS', 'queues.maxAttempts', 'number'],
  ['SESSION_DEFAULT_TTL', 'sessions.defaultTtl', 'number'],
  ['FANOUT_THRESHOLD', 'websocket.fanoutThreshold', 'number'],
  ['WS_MAX_CONNECTIONS_PER_TOKEN', 'websocket.maxConnectionsPerToken', 'number'],
];

/** Sets `value` at the dotted `path` of `target`, creating objects on the way. */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  const last = keys.pop() as string;
  let node = target;
  for (const key of keys) {
    const next = node[key];
    if (next && typeof next === 'object' && !Array.isArray(next)) node = next as Record<string, unknown>;
    else {
      const created: Record<string, unknown> = {};
      node[key] = created;
      node = created;
    }
  }
  node[last] = value;
}

/**
 * `base` with every variable of `ENV_FIELDS` that is set (and not empty) on top. Throws
 * `ConfigError` naming every variable that is not a number or boolean where one is needed.
 */
export function applyEnv(env: NodeJS.ProcessEnv, base: StorageConfigInput = {}): StorageConfigInput {
  const { input, problems } = readEnv(env, base);
  if (problems.length > 0) throw new ConfigError(problems);
  return input;
}

/** `applyEnv` without throwing: variables that cannot be read are left out and listed. */
export function readEnv(
  env: NodeJS.ProcessEnv,
  base: StorageConfigInput = {},
): { input: StorageConfigInput; problems: string[] } {
  const input = structuredClone(base) as Record<string, unknown>;
  const problems: string[] = [];
  for (const [variable, field, kind] of ENV_FIELDS) {
    const raw = env[variable];
    if (raw === undefined || raw === '') continue;
    if (kind === 'string') setPath(input, field, raw);
    else if (kind === 'list') {
      setPath(
        input,
        field,
        raw
          .split(',')
          .map((item) => item.trim())
          .filter((item) => item !== ''),
      );
    } else if (kind === 'boolean') {
      const value = raw.trim().toLowerCase();
      if (['true', '1', 'false', '0'].includes(value))
        setPath(input, field, value === 'true' || value === '1');
      else problems.push(`${variable}: expected true, false, 1 or 0, got ${JSON.stringify(raw)}`);
    } else {
      const n = Number(raw);
      if (raw.trim() !== '' && Number.isFinite(n)) setPath(input, field, n);
      else problems.push(`${variable}: expected a number, got ${JSON.stringify(raw)}`);
    }
  }
  return { input: input as StorageConfigInput, problems };
}

/**
 * Configuration from the environment, as Lambda sets it (every variable of `ENV_FIELDS`) on
 * top of `base`. For the YAML file as well, use `loadConfig()`.
 */
export function configFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  base: StorageConfigInput = {},
): StorageConfig {
  return resolveConfig(applyEnv(env, base));
}
