/**
 * The `kubently-storage` command line: its usage text and options, parsed here with nothing
 * else loaded, so `--help` answers without loading the drivers and the migrator
 * (lib/cli.ts imports lib/data-migration/cli.ts only for a command that runs).
 */
import { parseArgs } from 'node:util';
import { STORES } from './records.js';

export const USAGE = `usage: kubently-storage migrate <command> [options]
       npm run migrate:data -- <command> [options]

commands:
  copy            copy every store from the source into the PostgreSQL target (resumable)
  validate        compare source and target; exits 1 on any mismatch
  sync            zero-downtime transition under dual-write: copy, validate, report lag and
                  what to switch next (needs a hybrid configuration with dual-write on)
  status          show the copy's checkpoint
  legacy-fixture  write an upstream Kubently database into Redis (to try the legacy import)

source and target:
  --from redis|legacy   redis: this project's Redis layout (default); legacy: an upstream
                        Kubently Redis database (session:{id}, executor:token:{cluster}, …)
  --to postgresql       the only target
  --config FILE         the storage YAML to take URLs, key prefix and schema from
                        (default: STORAGE_CONFIG, else ./config.yaml if present)
  --redis-url URL       the source Redis (default REDIS_URL, else the config's redis.url)
  --redis-cluster       the source is a Redis Cluster (URL: a seed node)
  --prefix P            the source's key prefix (default KEY_PREFIX, else the config's; legacy: none)
  --database-url URL    the target PostgreSQL (default DATABASE_URL, else the config's)
  --schema S            the target schema (default POSTGRES_SCHEMA, else kubently)
  --driver pg|neon      the target's driver (default pg); neon takes --ws-proxy host:port/v1

copy and validate:
  --only S,S            only these stores: ${STORES.join(', ')}
  --batch-size N        items per batch (default 1000)
  --dry-run             copy: read and count everything, write nothing
  --restart             copy: ignore the checkpoint and read every store again
  --no-verify           copy: do not re-read changed items (a source nobody writes to)
  --move                copy --only queues,dedup: delete each message from the source once the
                        target holds it (after the queues' routing moved to postgresql)
  --sample N            validate: compare N random items per store (counts stay exact)
  --tolerance SECONDS   times (expiries) equal within this are the same (default 2)
  --since TIME          sync: the time (ISO 8601) from which every writer dual-writes (default now)
  --json                print the report as JSON
legacy-fixture:
  --sessions N --clusters N   how much to write (default 200 sessions over 5 clusters)
`;

export class UsageError extends Error {}

const OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  config: { type: 'string' },
  'redis-url': { type: 'string' },
  'redis-cluster': { type: 'boolean' },
  prefix: { type: 'string' },
  'database-url': { type: 'string' },
  schema: { type: 'string' },
  driver: { type: 'string' },
  'ws-proxy': { type: 'string' },
  only: { type: 'string' },
  'batch-size': { type: 'string' },
  'dry-run': { type: 'boolean' },
  restart: { type: 'boolean' },
  'no-verify': { type: 'boolean' },
  move: { type: 'boolean' },
  sample: { type: 'string' },
  tolerance: { type: 'string' },
  since: { type: 'string' },
  json: { type: 'boolean' },
  sessions: { type: 'string' },
  clusters: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type Flags = ReturnType<typeof parse>['values'];

export function parse(args: string[]) {
  // `--sample -1` is a value to reject with the option's own message, not an unknown option
  // `-1`: a dash-led number after an option that takes a value becomes `--sample=-1`.
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    const next = args[i + 1];
    if (
      name !== undefined &&
      OPTIONS[name as keyof typeof OPTIONS]?.type === 'string' &&
      next !== undefined &&
      /^-[\d.]/.test(next)
    ) {
      joined.push(`${arg}=${next}`);
      i++;
    } else joined.push(arg);
  }
  try {
    return parseArgs({ args: joined, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    // One line: node's hints about `--opt=-value` go, its sentences join.
    throw new UsageError(
      (error as Error).message
        .replace(/\s*To specify.*$/s, '')
        .replace(/\s*\n\s*/g, ' ')
        .trim(),
    );
  }
}

/** The exit code when the arguments ask for the usage text (0 for `--help`, 2 for no command); undefined otherwise. */
export function usageExitCode(flags: Flags, group: string | undefined): 0 | 2 | undefined {
  if (flags.help) return 0;
  return group === undefined ? 2 : undefined;
}

/**
 * `usageExitCode` for raw arguments; undefined too when they do not parse (the command reports
 * that with its own message).
 */
export function usageRequested(argv: string[]): 0 | 2 | undefined {
  try {
    const { values, positionals } = parse(argv);
    return usageExitCode(values, positionals[0]);
  } catch {
    return undefined;
  }
}
