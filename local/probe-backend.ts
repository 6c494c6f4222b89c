/**
 * `npm start`'s check of the servers the functions are about to use, before anything is bundled:
 * the configuration the functions will load (config.yaml or STORAGE_CONFIG, then the
 * environment) and one health check of each backend it reaches. What is wrong comes back as one
 * line — `cannot reach PostgreSQL at postgres://app:***@db:5432/app: connect ECONNREFUSED …` —
 * instead of a banner whose curl lines then fail.
 */
import { backendsUsed, loadConfig, type StorageConfig } from '../lib/config/index.js';
import { ConfigError } from '../lib/errors.js';
import { createStorage } from '../lib/storage/index.js';

/** Longest the check may take: a host that swallows packets makes each connect wait out its timeout. */
const PROBE_TIMEOUT_MS = 20_000;

const NAMES = { redis: 'Redis', postgresql: 'PostgreSQL' } as const;

/** The problem, one line per backend that does not answer; undefined when every backend answers. */
export async function probeBackends(env: NodeJS.ProcessEnv, cwd: string): Promise<string | undefined> {
  let config: StorageConfig;
  try {
    config = loadConfig({ env, cwd });
  } catch (error) {
    if (error instanceof ConfigError) return `invalid configuration: ${error.problems.join('; ')}`;
    throw error;
  }
  const used = backendsUsed(config);
  if (used.size === 0) return undefined;
  const storage = createStorage(config);
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<'timeout'>((done) => {
      timer = setTimeout(() => done('timeout'), PROBE_TIMEOUT_MS);
    });
    const report = await Promise.race([storage.health(), timeout]);
    const problems = [...used].flatMap((backend) => {
      const where = `${NAMES[backend]} at ${redact(urlOf(config, backend))}`;
      if (report === 'timeout')
        return [`cannot reach ${where}: no answer within ${PROBE_TIMEOUT_MS / 1000} s`];
      const check = report.checks[backend];
      if (check === undefined || check.ok) return [];
      const cause = (check.error ?? 'not answering').replace(/^\w+ unavailable: /, '');
      return [`cannot reach ${where}: ${redact(cause)}`];
    });
    return problems.length > 0 ? problems.join('\n') : undefined;
  } finally {
    clearTimeout(timer);
    await storage.close().catch(() => {});
  }
}

function urlOf(config: StorageConfig, backend: 'redis' | 'postgresql'): string {
  if (backend === 'redis') return config.redis.url;
  return config.postgresql.driver === 'pglite'
    ? `PGlite in ${config.postgresql.dataDir ?? 'memory'}`
    : (config.postgresql.url ?? '');
}

/** A URL (or a message holding one) without its password. */
export function redact(text: string): string {
  return text.replace(/\/\/([^:/@\s]+):[^@\s]*@/g, '//$1:***@');
}
