// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are YAML with ${VAR} references, not templates
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  CONFIG_FILE_VARIABLE,
  configFromEnv,
  ENV_FIELDS,
  FILE_FIELDS,
  type LoadConfigOptions,
  loadConfig,
  resolveConfig,
  StorageConfigSchema,
} from '../../lib/config/index.js';
import { ConfigError } from '../../lib/errors.js';

const dirs: string[] = [];
afterAll(() => {
  // The directories are under the OS temp dir and tiny; nothing else to clean.
  dirs.length = 0;
});

/** A fresh directory holding `files`; returns its path. */
function directory(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'kubently-config-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** Loads `text` as the file named by STORAGE_CONFIG, with `env` and nothing from process.env. */
function load(text: string, env: NodeJS.ProcessEnv = {}, options: LoadConfigOptions = {}) {
  const cwd = directory({ 'storage.yaml': text });
  return loadConfig({ env: { STORAGE_CONFIG: 'storage.yaml', ...env }, cwd, ...options });
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

/** The one problem starting with `path:`. */
function problemAt(problems: string[], path: string): string {
  const found = problems.filter((p) => p.startsWith(`${path}:`));
  expect(found, `one problem at ${path} in:\n${problems.join('\n')}`).toHaveLength(1);
  return found[0] as string;
}

describe('the file', () => {
  it('is optional: no config.yaml in the working directory means defaults and env', () => {
    const cwd = directory();
    expect(loadConfig({ env: {}, cwd })).toEqual(resolveConfig({}));
    expect(loadConfig({ env: { STORAGE_BACKEND: 'redis' }, cwd }).backend).toBe('redis');
  });

  it('is config.yaml in the working directory by default', () => {
    const cwd = directory({ 'config.yaml': 'storage:\n  backend: redis\n' });
    expect(loadConfig({ env: {}, cwd }).backend).toBe('redis');
  });

  it('is the one STORAGE_CONFIG names, which must exist', () => {
    const cwd = directory({ 'config.yaml': 'storage: { backend: redis }\n' });
    mkdirSync(join(cwd, 'etc'));
    writeFileSync(join(cwd, 'etc', 'kubently.yaml'), 'sessions: { default_ttl: 60 }\n');
    const config = loadConfig({ env: { STORAGE_CONFIG: 'etc/kubently.yaml' }, cwd });
    expect(config.sessions.defaultTtl).toBe(60);
    expect(config.backend).toBe('memory'); // config.yaml is not read as well

    const [missing] = problemsOf(() => loadConfig({ env: { STORAGE_CONFIG: 'nope.yaml' }, cwd }));
    expect(missing).toBe(`STORAGE_CONFIG: no such file: ${join(cwd, 'nope.yaml')}`);
    expect(problemsOf(() => loadConfig({ env: {}, file: 'gone.yaml', cwd }))[0]).toMatch(
      /^config file: no such file: .*gone\.yaml$/,
    );
  });

  it('may be empty or only comments', () => {
    expect(load('')).toEqual(resolveConfig({}));
    expect(load('# nothing yet\n')).toEqual(resolveConfig({}));
  });

  it('reads Sentinel and replica settings from the file and the environment, and refuses them with a cluster', () => {
    const config = load(`
redis:
  sentinels: ['10.0.0.1:26379', '[::1]:26380']
  sentinel_name: primary
  sentinel_password: spw
  wait_for_replicas: { replicas: 1, timeout: 0.25 }
`);
    expect(config.redis).toMatchObject({
      sentinels: ['10.0.0.1:26379', '[::1]:26380'],
      sentinelName: 'primary',
      sentinelPassword: 'spw',
      waitForReplicas: { replicas: 1, timeout: 0.25 },
    });
    const fromEnv = configFromEnv({
      REDIS_SENTINELS: ' a:1, b:2 ,',
      REDIS_SENTINEL_NAME: 'm',
      STORAGE_BACKEND: 'redis',
    });
    expect(fromEnv.redis).toMatchObject({ sentinels: ['a:1', 'b:2'], sentinelName: 'm' });
    expect(() => load('redis: { sentinels: [nohost] }')).toThrow(/redis\.sentinels\.0: must match/);
    expect(() =>
      resolveConfig({
        backend: 'redis',
        redis: { cluster: true, sentinels: ['a:1'], waitForReplicas: { replicas: 1 } },
      }),
    ).toThrow(
      /redis\.sentinels: a Redis Cluster fails over by itself[\s\S]*redis\.waitForReplicas: not available with redis\.cluster/,
    );
  });

  it('maps every Appendix A key and every project setting onto the internal configuration', () => {
    const config = load(`
storage: { backend: hybrid }
redis:
  url: rediss://cache:6380
  password: pw
  pool_size: 8
  max_connections: 32
  socket_timeout: 1.5
  socket_connect_timeout: 3
  tls: true
  cluster: true
  key_prefix: "k8s:"
  max_retries_per_request: 4
postgresql:
  url: postgres://app@db:5432/kubently
  driver: neon
  pool_size: 12
  min_pool_size: 2
  max_pool_size: 12
  command_timeout: 20
  statement_cache_size: 0
  schema: storage
  pooler: transaction
  listen: false
  lease_commit: sync
  poll_interval: 0.5
  migrate: true
  data_dir: /tmp/pg
  ws_proxy: 127.0.0.1:4444/v1
  secure_websocket: false
  connect_timeout: 7
hybrid:
  routing: { sessions: redis, authentication: redis, audit: redis, queues: postgresql, cache: postgresql, pubsub: postgresql }
  fallback: { enabled: false, order: [postgresql], timeout: 2.5 }
  sync: { enabled: true, async: false }
ttl: { enabled: false, interval: 120, batch_size: 50 }
migration: { dual_write: true, sync_interval: 30, validation_enabled: true }
limits: { max_value_bytes: 1048576 }
sessions: { default_ttl: 600 }
queues: { max_attempts: 9, dedup_window: 60 }
events: { max_history: 10, max_history_by_channel: { "audit:*": 5 } }
audit: { max_entries: 500, max_age: 86400 }
auth: { bootstrap_token_hash: "${'a'.repeat(64)}" }
websocket: { fanout_threshold: 7, max_connections_per_token: 3 }
`);
    expect(config).toEqual({
      backend: 'hybrid',
      keyPrefix: 'k8s:',
      redis: {
        url: 'rediss://cache:6380',
        password: 'pw',
        poolSize: 8,
        maxConnections: 32,
        commandTimeout: 1.5,
        connectTimeout: 3,
        tls: true,
        cluster: true,
        maxRetriesPerRequest: 4,
        sentinelName: 'mymaster',
      },
      postgresql: {
        url: 'postgres://app@db:5432/kubently',
        driver: 'neon',
        poolSize: 12,
        minPoolSize: 2,
        commandTimeout: 20,
        preparedStatements: false,
        schema: 'storage',
        pooler: 'transaction',
        listen: false,
        leaseCommit: 'sync',
        pollInterval: 0.5,
        migrate: true,
        dataDir: '/tmp/pg',
        wsProxy: '127.0.0.1:4444/v1',
        secureWebSocket: false,
        connectTimeout: 7,
      },
      hybrid: {
        routing: {
          sessions: 'redis',
          authentication: 'redis',
          audit: 'redis',
          queues: 'postgresql',
          cache: 'postgresql',
          pubsub: 'postgresql',
        },
        fallback: { enabled: false, order: ['postgresql'], timeout: 2.5 },
        sync: { enabled: true, async: false },
      },
      ttl: { enabled: false, interval: 120, batchSize: 50 },
      migration: { dualWrite: true, syncInterval: 30, validationEnabled: true },
      limits: { maxValueBytes: 1_048_576 },
      sessions: { defaultTtl: 600 },
      queues: { maxAttempts: 9, dedupWindow: 60 },
      events: { maxHistory: 10, maxHistoryByChannel: { 'audit:*': 5 } },
      audit: { maxEntries: 500, maxAge: 86_400 },
      auth: { bootstrapTokenHash: 'a'.repeat(64) },
      websocket: { fanoutThreshold: 7, maxConnectionsPerToken: 3 },
    });
  });

  it('has a key for every internal field', () => {
    const leaves: string[] = [];
    const mapped = new Set(FILE_FIELDS.map((f) => f.field));
    const walk = (schema: TSchema, path: string) => {
      // A file key may set an object field whole (`redis.wait_for_replicas`).
      if (mapped.has(path)) return;
      if (schema.type === 'object' && schema.properties) {
        for (const [key, child] of Object.entries(schema.properties as Record<string, TSchema>)) {
          walk(child, path ? `${path}.${key}` : key);
        }
      } else leaves.push(path);
    };
    walk(StorageConfigSchema, '');
    expect(leaves).toEqual([]);
  });

  it('statement_cache_size above 0 keeps prepared statements on', () => {
    expect(load('postgresql: { statement_cache_size: 0 }').postgresql.preparedStatements).toBe(false);
    expect(load('postgresql: { statement_cache_size: 500 }').postgresql.preparedStatements).toBe(true);
    expect(load('postgresql: { pool_size: 3 }').postgresql.poolSize).toBe(3);
  });
});

describe('precedence', () => {
  it('defaults < file < environment', () => {
    const text = `
storage: { backend: redis }
redis: { url: redis://from-file:6379, key_prefix: "file:" }
queues: { max_attempts: 3 }
websocket: { fanout_threshold: 10, max_connections_per_token: 4 }
`;
    const fileOnly = load(text);
    expect(fileOnly.backend).toBe('redis');
    expect(fileOnly.redis.url).toBe('redis://from-file:6379');
    expect(fileOnly.queues).toEqual({ maxAttempts: 3, dedupWindow: 300 }); // the window stays default
    expect(fileOnly.websocket.fanoutThreshold).toBe(10);
    expect(fileOnly.websocket.maxConnectionsPerToken).toBe(4);

    const overridden = load(text, {
      STORAGE_BACKEND: 'postgresql',
      DATABASE_URL: 'postgres://db:5432/x',
      REDIS_URL: 'redis://from-env:6379',
      QUEUE_MAX_ATTEMPTS: '8',
      FANOUT_THRESHOLD: '0',
      WS_MAX_CONNECTIONS_PER_TOKEN: '25',
      REDIS_PASSWORD: 'env-secret',
    });
    expect(overridden.backend).toBe('postgresql');
    expect(overridden.postgresql.url).toBe('postgres://db:5432/x');
    expect(overridden.redis.url).toBe('redis://from-env:6379');
    expect(overridden.redis.password).toBe('env-secret');
    expect(overridden.keyPrefix).toBe('file:'); // KEY_PREFIX unset: the file's
    expect(overridden.queues.maxAttempts).toBe(8);
    expect(overridden.websocket.fanoutThreshold).toBe(0);
    expect(overridden.websocket.maxConnectionsPerToken).toBe(25);
  });

  it('treats an empty variable as unset', () => {
    expect(load('storage: { backend: redis }', { STORAGE_BACKEND: '', REDIS_URL: '' }).backend).toBe('redis');
  });

  it('names the variable when the bad value came from the environment', () => {
    const problems = problemsOf(() =>
      load('queues: { max_attempts: 3 }', {
        QUEUE_MAX_ATTEMPTS: '0',
        STORAGE_BACKEND: 'mongo',
        REDIS_CLUSTER: 'yes',
      }),
    );
    expect(problems).toContain('REDIS_CLUSTER: expected true, false, 1 or 0, got "yes"');
    expect(problemAt(problems, 'queues.max_attempts')).toBe(
      'queues.max_attempts: must be at least 1, got 0 (from QUEUE_MAX_ATTEMPTS)',
    );
    expect(problemAt(problems, 'storage.backend')).toMatch(/got "mongo" \(from STORAGE_BACKEND\)$/);
  });
});

describe('${VAR} interpolation', () => {
  it('resolves references, defaults and $$ in string values', () => {
    const config = load(
      `
redis:
  url: \${REDIS_URL}
  password: \${REDIS_PASSWORD}
  key_prefix: \${PREFIX:-kb:}
postgresql:
  url: postgres://\${PGUSER:-app}:\${PGPASS:-}@\${PGHOST}:5432/db
  ws_proxy: \${EMPTY:-127.0.0.1:4444/v1}
  data_dir: /price/$$5/$\${NOT_A_REF}
`,
      { REDIS_URL: 'redis://r:6379', REDIS_PASSWORD: 's3cret', PGHOST: 'db', EMPTY: '' },
    );
    expect(config.redis.url).toBe('redis://r:6379');
    expect(config.redis.password).toBe('s3cret');
    expect(config.keyPrefix).toBe('kb:');
    expect(config.postgresql.url).toBe('postgres://app:@db:5432/db');
    expect(config.postgresql.wsProxy).toBe('127.0.0.1:4444/v1'); // :- replaces an empty value too
    expect(config.postgresql.dataDir).toBe('/price/$5/${NOT_A_REF}');
  });

  it('gives a reference standing alone the type of its field', () => {
    const config = load(
      'postgresql: { pool_size: "${POOL:-7}", listen: "${LISTEN}" }\nttl:\n  interval: ${I}\n',
      {
        LISTEN: 'false',
        I: '90',
      },
    );
    expect(config.postgresql.poolSize).toBe(7);
    expect(config.postgresql.listen).toBe(false);
    expect(config.ttl.interval).toBe(90);
    // Embedded in text it stays text, and the field says what it wanted.
    expect(
      problemAt(
        problemsOf(() => load('postgresql: { pool_size: "n${N:-1}" }')),
        'postgresql.pool_size',
      ),
    ).toMatch(/expected a whole number, got "n1"/);
  });

  it('names every unset variable with the field that needs it, and malformed references', () => {
    const problems = problemsOf(() =>
      load(
        'redis:\n  url: ${REDIS_URL}\n  password: ${REDIS_PASSWORD}\npostgresql:\n  url: ${DB\n  pool_size: ${POOL}\n  schema: ${1X}\n',
      ),
    );
    expect(problemAt(problems, 'redis.url')).toBe(
      'redis.url: ${REDIS_URL} is not set and has no default (set REDIS_URL, or write ${REDIS_URL:-default})',
    );
    expect(problemAt(problems, 'redis.password')).toMatch(/\$\{REDIS_PASSWORD\} is not set/);
    expect(problemAt(problems, 'postgresql.url')).toMatch(/"\$\{" without a closing "\}"/);
    expect(problemAt(problems, 'postgresql.pool_size')).toMatch(/\$\{POOL\} is not set/); // once, not also as a type
    expect(problemAt(problems, 'postgresql.schema')).toMatch(/is not a variable reference/);
  });
});

describe('field errors', () => {
  it('wrong types', () => {
    const problems = problemsOf(() =>
      load(`
storage: { backend: 5 }
redis: { tls: "yes", password: 123456, socket_timeout: soon }
postgresql: { pool_size: 2.5, listen: [true] }
events: { max_history_by_channel: { "audit:*": many } }
sessions: 300
`),
    );
    expect(problemAt(problems, 'redis.tls')).toBe(
      'redis.tls: expected true or false, got "yes" (storage.yaml:3)',
    );
    // A secret's value never appears in a message.
    expect(problemAt(problems, 'redis.password')).toBe(
      'redis.password: expected a string (quote it in YAML) (storage.yaml:3)',
    );
    expect(problemAt(problems, 'redis.socket_timeout')).toMatch(/expected a number, got "soon"/);
    expect(problemAt(problems, 'postgresql.pool_size')).toMatch(/expected a whole number, got 2.5/);
    expect(problemAt(problems, 'postgresql.listen')).toMatch(/expected true or false, got \[true\]/);
    expect(problemAt(problems, 'events.max_history_by_channel.audit:*')).toMatch(/expected a whole number/);
    expect(problemAt(problems, 'sessions')).toMatch(/expected a mapping/);
    expect(problemAt(problems, 'storage.backend')).toMatch(/must be one of/);
  });

  it('a file that is not a mapping', () => {
    expect(problemsOf(() => load('- redis\n- postgresql\n'))[0]).toMatch(/^\(root\): expected a mapping/);
  });

  it('unknown keys at every depth, with a guess for near misses', () => {
    const problems = problemsOf(() =>
      load(`
redsi: { url: redis://x }
redis: { poolSize: 3, colour: blue }
hybrid:
  routing: { kv: redis }
  fallback: { enable: true }
`),
    );
    expect(problemAt(problems, 'redsi')).toMatch(
      /^redsi: Unexpected property: not a setting \(did you mean redis\?\)/,
    );
    expect(problemAt(problems, 'redis.poolSize')).toMatch(/did you mean pool_size\?/);
    expect(problemAt(problems, 'redis.colour')).toMatch(/not a setting; allowed here: url, password/);
    expect(problemAt(problems, 'hybrid.routing.kv')).toMatch(
      /allowed here: sessions, authentication, audit, queues, cache, pubsub \(storage\.yaml:5\)$/,
    );
    expect(problemAt(problems, 'hybrid.fallback.enable')).toMatch(/did you mean enabled\?/);
  });

  it('enums list the allowed values', () => {
    const problems = problemsOf(() =>
      load(
        'storage: { backend: mongo }\npostgresql: { driver: mysql }\nhybrid: { routing: { queues: sqs } }',
      ),
    );
    expect(problemAt(problems, 'storage.backend')).toBe(
      'storage.backend: must be one of "memory", "redis", "postgresql", "hybrid", got "mongo" (storage.yaml:1)',
    );
    expect(problemAt(problems, 'postgresql.driver')).toMatch(
      /must be one of "pg", "neon", "pglite", got "mysql"/,
    );
    expect(problemAt(problems, 'hybrid.routing.queues')).toMatch(
      /must be one of "redis", "postgresql", got "sqs"/,
    );
  });

  it('negative, zero and out-of-range sizes', () => {
    const problems = problemsOf(() =>
      load(`
postgresql: { max_pool_size: -1, command_timeout: 0, statement_cache_size: -5 }
redis: { pool_size: 0, socket_connect_timeout: 120 }
ttl: { batch_size: 0, interval: -300 }
limits: { max_value_bytes: 100 }
websocket: { fanout_threshold: -1, max_connections_per_token: 0 }
`),
    );
    expect(problemAt(problems, 'postgresql.max_pool_size')).toMatch(/must be at least 1, got -1/);
    expect(problemAt(problems, 'postgresql.command_timeout')).toMatch(/must be greater than 0, got 0/);
    expect(problemAt(problems, 'postgresql.statement_cache_size')).toMatch(/must be at least 0, got -5/);
    expect(problemAt(problems, 'redis.pool_size')).toMatch(/must be at least 1, got 0/);
    expect(problemAt(problems, 'redis.socket_connect_timeout')).toMatch(/must be at most 60, got 120/);
    expect(problemAt(problems, 'ttl.batch_size')).toMatch(/must be at least 1/);
    expect(problemAt(problems, 'ttl.interval')).toMatch(/must be greater than 0, got -300/);
    expect(problemAt(problems, 'limits.max_value_bytes')).toMatch(/must be at least 1024, got 100/);
    expect(problemAt(problems, 'websocket.fanout_threshold')).toMatch(/must be at least 0, got -1/);
    expect(problemAt(problems, 'websocket.max_connections_per_token')).toMatch(/must be at least 1, got 0/);
  });

  it('a missing or malformed required URL', () => {
    expect(
      problemAt(
        problemsOf(() => load('storage: { backend: postgresql }')),
        'postgresql.url',
      ),
    ).toMatch(/required for driver pg/);
    expect(
      problemAt(
        problemsOf(() => load('storage: { backend: redis }\nredis: { url: http://x }')),
        'redis.url',
      ),
    ).toMatch(/expected a redis:\/\/ or rediss:\/\/ URL .*\(storage\.yaml:2\)$/);
    // PGlite needs no URL.
    expect(load('storage: { backend: postgresql }\npostgresql: { driver: pglite }').postgresql.driver).toBe(
      'pglite',
    );
  });

  it('YAML syntax errors with line and column', () => {
    expect(problemsOf(() => load('storage:\n  backend: [redis\nredis: {}\n'))).toEqual([
      'storage.yaml:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
    expect(problemsOf(() => load('redis:\n  url: redis://a\n  url: redis://b\n'))[0]).toMatch(
      /^storage\.yaml:3:3: Map keys must be unique/,
    );
  });

  it('hybrid routing to a backend without connection settings', () => {
    const problems = problemsOf(() =>
      load(
        'storage: { backend: hybrid }\npostgresql: { url: "postgres://db:5432/x" }\nhybrid: { fallback: { enabled: false } }',
      ),
    );
    expect(problems).toEqual([
      'hybrid.routing.queues: routes to redis, which has no connection settings (set redis.url or REDIS_URL)',
      'hybrid.routing.cache: routes to redis, which has no connection settings (set redis.url or REDIS_URL)',
      'hybrid.routing.pubsub: routes to redis, which has no connection settings (set redis.url or REDIS_URL)',
    ]);
    // The other way round: routed to postgresql without a URL.
    const pg = problemsOf(() =>
      load(
        'storage: { backend: hybrid }\nredis: { url: "redis://r:6379" }\nhybrid: { routing: { queues: postgresql }, fallback: { enabled: false } }',
      ),
    );
    expect(problemAt(pg, 'hybrid.routing.queues')).toBe(
      'hybrid.routing.queues: routes to postgresql, which has no connection settings (set postgresql.url or DATABASE_URL, or postgresql.driver: pglite) (storage.yaml:3)',
    );
    expect(problemAt(pg, 'hybrid.routing.sessions')).toMatch(
      /routes to postgresql, which has no connection settings/,
    );
    expect(problemAt(pg, 'postgresql.url')).toMatch(/required for driver pg/);
    // REDIS_URL counts as a connection setting; a fallback backend must have one too.
    expect(
      load('storage: { backend: hybrid }\npostgresql: { url: "postgres://db/x" }', {
        REDIS_URL: 'redis://r:6379',
      }).backend,
    ).toBe('hybrid');
    const fallback = problemsOf(() =>
      load(
        'storage: { backend: hybrid }\npostgresql: { url: "postgres://db/x" }\nhybrid: { routing: { queues: postgresql, cache: postgresql, pubsub: postgresql } }',
      ),
    );
    expect(fallback).toEqual([
      'hybrid.fallback.order: falls back to redis, which has no connection settings (set redis.url or REDIS_URL)',
    ]);
  });

  it('fallback order naming unknown backends, repeats, or nothing', () => {
    const problems = problemsOf(() => load('hybrid: { fallback: { order: [redis, memory, redis] } }'));
    expect(problemAt(problems, 'hybrid.fallback.order.1')).toMatch(
      /must be one of "redis", "postgresql", got "memory"/,
    );
    expect(problemAt(problems, 'hybrid.fallback.order')).toMatch(/must not name an item twice/);
    expect(
      problemAt(
        problemsOf(() => load('hybrid: { fallback: { order: [] } }')),
        'hybrid.fallback.order',
      ),
    ).toMatch(/must list at least 1/);
  });

  it('min_pool_size above the pool size, and two keys that disagree', () => {
    expect(problemsOf(() => load('postgresql: { min_pool_size: 8, max_pool_size: 4 }'))).toEqual([
      'postgresql.min_pool_size: must be at most postgresql.max_pool_size (4), got 8 (storage.yaml:1)',
    ]);
    expect(problemsOf(() => load('postgresql: { min_pool_size: 8, pool_size: 4 }'))[0]).toMatch(
      /^postgresql\.min_pool_size: must be at most postgresql\.pool_size \(4\), got 8/,
    );
    // Above the default of 5.
    expect(problemsOf(() => load('postgresql: { min_pool_size: 6 }'))[0]).toMatch(
      /at most postgresql\.max_pool_size \(5\)/,
    );
    expect(problemsOf(() => load('postgresql: { pool_size: 4, max_pool_size: 8 }'))[0]).toMatch(
      /^postgresql\.pool_size: 4 and postgresql\.max_pool_size: 8 both size the one pool/,
    );
    expect(load('postgresql: { pool_size: 8, max_pool_size: 8 }').postgresql.poolSize).toBe(8);
    expect(
      problemsOf(() => load('postgresql: { statement_cache_size: 0, prepared_statements: true }'))[0],
    ).toMatch(/^postgresql\.statement_cache_size: 0 contradicts postgresql\.prepared_statements: true/);
  });

  it('pooler: transaction turns LISTEN and prepared statements off; LISTEN turned on is refused', () => {
    expect(load('postgresql: { pooler: transaction }').postgresql).toMatchObject({
      pooler: 'transaction',
      listen: false,
      preparedStatements: false,
    });
    expect(load('', { POSTGRES_POOLER: 'transaction' }).postgresql).toMatchObject({
      listen: false,
      preparedStatements: false,
    });
    expect(load('').postgresql).toMatchObject({ pooler: 'none', listen: true, preparedStatements: true });
    // PgBouncer 1.21+ keeps protocol-level prepared statements: allowed when asked for.
    expect(load('postgresql: { pooler: transaction, prepared_statements: true }').postgresql).toMatchObject({
      listen: false,
      preparedStatements: true,
    });
    expect(problemsOf(() => load('postgresql:\n  pooler: transaction\n  listen: true\n'))).toEqual([
      'postgresql.listen: true cannot work with postgresql.pooler: transaction (a LISTEN stays on a server ' +
        'session the pooler lends to other clients next); leave postgresql.listen unset or false (storage.yaml:3)',
    ]);
    expect(
      problemAt(
        problemsOf(() => load('postgresql: { pooler: session }')),
        'postgresql.pooler',
      ),
    ).toMatch(/must be one of "none", "transaction", got "session"/);
  });

  it('every problem of a file in one error, each with its line', () => {
    const problems = problemsOf(() =>
      load(`storage:
  backend: mongo
redis:
  pool_size: -2
  bogus: 1
postgresql:
  max_pool_size: ten
ttl:
  interval: 0
`),
    );
    expect(problems).toEqual([
      'storage.backend: must be one of "memory", "redis", "postgresql", "hybrid", got "mongo" (storage.yaml:2)',
      expect.stringMatching(/^redis\.bogus: Unexpected property: not a setting; .*\(storage\.yaml:5\)$/),
      'redis.pool_size: must be at least 1, got -2 (storage.yaml:4)',
      'postgresql.max_pool_size: expected a whole number, got "ten" (storage.yaml:7)',
      'ttl.interval: must be greater than 0, got 0 (storage.yaml:9)',
    ]);
  });

  it('checks across fields even while single fields are wrong', () => {
    const problems = problemsOf(() =>
      load(
        'storage: { backend: hybrid }\npostgresql: { url: "postgres://db/x", min_pool_size: 9 }\nqueues: { max_attempts: 0 }',
      ),
    );
    expect(problemAt(problems, 'queues.max_attempts')).toMatch(/at least 1/);
    expect(problemAt(problems, 'hybrid.routing.queues')).toMatch(/no connection settings/);
  });
});

describe('the example setups', () => {
  const examples = join(import.meta.dirname, '../../config/examples');
  const secrets = {
    REDIS_URL: 'rediss://cache.example.com:6380',
    REDIS_PASSWORD: 'redis-secret',
    DATABASE_URL: 'postgres://app:pg-secret@ep-example.eu-central-1.aws.neon.tech:5432/kubently',
    BOOTSTRAP_TOKEN_HASH: 'b'.repeat(64),
  };
  const example = (name: string, env: NodeJS.ProcessEnv = secrets) =>
    loadConfig({ file: join(examples, name), env });

  it('performance-critical: all Redis', () => {
    const config = example('performance-critical.yaml');
    expect(config.backend).toBe('redis');
    expect(config.redis).toMatchObject({
      url: secrets.REDIS_URL,
      password: 'redis-secret',
      tls: true,
      cluster: false,
    });
    expect(config.ttl).toEqual({ enabled: true, interval: 60, batchSize: 5000 });
    expect(example('performance-critical.yaml', { ...secrets, REDIS_CLUSTER: 'true' }).redis.cluster).toBe(
      true,
    );
  });

  it('production: PostgreSQL with secrets from the environment', () => {
    const config = example('production.yaml');
    expect(config.backend).toBe('postgresql');
    expect(config.postgresql).toMatchObject({
      url: secrets.DATABASE_URL,
      driver: 'neon',
      poolSize: 5,
      minPoolSize: 0,
      preparedStatements: true,
    });
    expect(config.auth.bootstrapTokenHash).toBe('b'.repeat(64));
    expect(example('production.yaml', { ...secrets, POSTGRES_DRIVER: 'pg' }).postgresql.driver).toBe('pg');
    // Without its secrets it says which are missing.
    const problems = problemsOf(() => example('production.yaml', {}));
    expect(problems.map((p) => p.slice(0, p.indexOf(':')))).toEqual([
      'postgresql.url',
      'auth.bootstrap_token_hash',
    ]);
  });

  it('enterprise-hybrid: routing, fallback and sync', () => {
    const config = example('enterprise-hybrid.yaml');
    expect(config.backend).toBe('hybrid');
    expect(config.hybrid).toEqual({
      routing: {
        sessions: 'postgresql',
        authentication: 'postgresql',
        audit: 'postgresql',
        queues: 'redis',
        cache: 'redis',
        pubsub: 'redis',
      },
      fallback: { enabled: true, order: ['redis', 'postgresql'], timeout: 0.5 },
      sync: { enabled: true, async: true },
    });
    expect(config.migration).toEqual({ dualWrite: false, syncInterval: 60, validationEnabled: true });
    expect(config.postgresql).toMatchObject({ driver: 'pg', poolSize: 10, minPoolSize: 1 });
  });
});

describe('docs/configuration.md', () => {
  const page = readFileSync(join(import.meta.dirname, '../../docs/configuration.md'), 'utf8');
  it('lists every file key and every variable', () => {
    expect(FILE_FIELDS.map((f) => f.file).filter((key) => !page.includes(`\`${key}\``))).toEqual([]);
    expect(ENV_FIELDS.map(([name]) => name).filter((name) => !page.includes(`\`${name}\``))).toEqual([]);
    expect(page).toContain(`\`${CONFIG_FILE_VARIABLE}\``);
  });
});

describe('getStorageConfig (Lambda)', () => {
  it('reads STORAGE_CONFIG and the environment once', async () => {
    const cwd = directory({ 'lambda.yaml': 'sessions: { default_ttl: 42 }\n' });
    vi.stubEnv('STORAGE_CONFIG', join(cwd, 'lambda.yaml'));
    vi.stubEnv('QUEUE_MAX_ATTEMPTS', '4');
    vi.resetModules();
    try {
      const { getStorageConfig } = await import('../../functions/runtime/storage.js');
      const config = getStorageConfig();
      expect(config.sessions.defaultTtl).toBe(42);
      expect(config.queues.maxAttempts).toBe(4);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
