/**
 * The YAML configuration file (the seed's Appendix A, snake_case) and `loadConfig()`:
 * defaults < file < environment, validated at once. The file has its own schema, built from
 * the fields of `StorageConfigSchema` it maps to, so a constraint is written once and a
 * problem is reported under the key the operator wrote.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TObject, TSchema } from '@sinclair/typebox';
// A namespace import esbuild can tree-shake (TypeBox's `Type` object holds every builder).
import * as T from '@sinclair/typebox';
import { ConfigError } from '../errors.js';
import { ENV_FIELDS, readEnv, setPath } from './env.js';
import {
  resolveConfig,
  type StorageConfig,
  type StorageConfigInput,
  StorageConfigSchema,
  schemaProblems,
} from './schema.js';
import { type ConfigDocument, readConfigDocument } from './yaml.js';

/** The variable naming the configuration file. */
export const CONFIG_FILE_VARIABLE = 'STORAGE_CONFIG';
/** The file read when `STORAGE_CONFIG` is unset (relative to the working directory); it may be absent. */
export const DEFAULT_CONFIG_FILE = 'config.yaml';

interface FileField {
  /** Dotted path in the file. */
  file: string;
  /** Dotted path in `StorageConfig`. */
  field: string;
  /** The file's shape when it is not the field's. */
  schema?: TSchema;
  /** The field's value from the file's. */
  toField?: (value: unknown) => unknown;
}

const routing = ['sessions', 'authentication', 'audit', 'queues', 'cache', 'pubsub'];

/** Every key the file accepts and the field it sets. */
export const FILE_FIELDS: readonly FileField[] = [
  { file: 'storage.backend', field: 'backend' },
  { file: 'redis.url', field: 'redis.url' },
  { file: 'redis.password', field: 'redis.password' },
  { file: 'redis.tls', field: 'redis.tls' },
  { file: 'redis.cluster', field: 'redis.cluster' },
  { file: 'redis.key_prefix', field: 'keyPrefix' },
  { file: 'redis.socket_timeout', field: 'redis.commandTimeout' },
  { file: 'redis.socket_connect_timeout', field: 'redis.connectTimeout' },
  { file: 'redis.max_retries_per_request', field: 'redis.maxRetriesPerRequest' },
  { file: 'redis.pool_size', field: 'redis.poolSize' },
  { file: 'redis.max_connections', field: 'redis.maxConnections' },
  { file: 'redis.sentinels', field: 'redis.sentinels' },
  { file: 'redis.sentinel_name', field: 'redis.sentinelName' },
  { file: 'redis.sentinel_password', field: 'redis.sentinelPassword' },
  // `{ replicas, timeout }`: the same names in the file as in the configuration.
  { file: 'redis.wait_for_replicas', field: 'redis.waitForReplicas' },
  { file: 'postgresql.url', field: 'postgresql.url' },
  { file: 'postgresql.driver', field: 'postgresql.driver' },
  { file: 'postgresql.schema', field: 'postgresql.schema' },
  { file: 'postgresql.pool_size', field: 'postgresql.poolSize' },
  { file: 'postgresql.max_pool_size', field: 'postgresql.poolSize' },
  { file: 'postgresql.min_pool_size', field: 'postgresql.minPoolSize' },
  { file: 'postgresql.connect_timeout', field: 'postgresql.connectTimeout' },
  { file: 'postgresql.command_timeout', field: 'postgresql.commandTimeout' },
  {
    // node-postgres keeps every statement it prepared on a connection (no cache size to set),
    // and this library runs a small fixed set: 0 turns preparing off, any other size keeps it on.
    file: 'postgresql.statement_cache_size',
    field: 'postgresql.preparedStatements',
    schema: T.Integer({ minimum: 0, maximum: 100_000 }),
    toField: (size) => (size as number) > 0,
  },
  { file: 'postgresql.prepared_statements', field: 'postgresql.preparedStatements' },
  { file: 'postgresql.pooler', field: 'postgresql.pooler' },
  { file: 'postgresql.listen', field: 'postgresql.listen' },
  { file: 'postgresql.lease_commit', field: 'postgresql.leaseCommit' },
  { file: 'postgresql.poll_interval', field: 'postgresql.pollInterval' },
  { file: 'postgresql.migrate', field: 'postgresql.migrate' },
  { file: 'postgresql.data_dir', field: 'postgresql.dataDir' },
  { file: 'postgresql.ws_proxy', field: 'postgresql.wsProxy' },
  { file: 'postgresql.secure_websocket', field: 'postgresql.secureWebSocket' },
  ...routing.map((type) => ({ file: `hybrid.routing.${type}`, field: `hybrid.routing.${type}` })),
  { file: 'hybrid.fallback.enabled', field: 'hybrid.fallback.enabled' },
  { file: 'hybrid.fallback.order', field: 'hybrid.fallback.order' },
  { file: 'hybrid.fallback.timeout', field: 'hybrid.fallback.timeout' },
  { file: 'hybrid.sync.enabled', field: 'hybrid.sync.enabled' },
  { file: 'hybrid.sync.async', field: 'hybrid.sync.async' },
  { file: 'ttl.enabled', field: 'ttl.enabled' },
  { file: 'ttl.interval', field: 'ttl.interval' },
  { file: 'ttl.batch_size', field: 'ttl.batchSize' },
  { file: 'migration.dual_write', field: 'migration.dualWrite' },
  { file: 'migration.sync_interval', field: 'migration.syncInterval' },
  { file: 'migration.validation_enabled', field: 'migration.validationEnabled' },
  { file: 'limits.max_value_bytes', field: 'limits.maxValueBytes' },
  { file: 'sessions.default_ttl', field: 'sessions.defaultTtl' },
  { file: 'queues.max_attempts', field: 'queues.maxAttempts' },
  { file: 'queues.dedup_window', field: 'queues.dedupWindow' },
  { file: 'events.max_history', field: 'events.maxHistory' },
  { file: 'events.max_history_by_channel', field: 'events.maxHistoryByChannel' },
  { file: 'audit.max_entries', field: 'audit.maxEntries' },
  { file: 'audit.max_age', field: 'audit.maxAge' },
  { file: 'auth.bootstrap_token_hash', field: 'auth.bootstrapTokenHash' },
  { file: 'websocket.fanout_threshold', field: 'websocket.fanoutThreshold' },
  { file: 'websocket.max_connections_per_token', field: 'websocket.maxConnectionsPerToken' },
];

/** The schema below `path` (properties, record values, list items); undefined past a leaf. */
function schemaAt(schema: TSchema | undefined, path: readonly string[]): TSchema | undefined {
  let node = schema;
  for (const key of path) {
    if (!node) return undefined;
    if (node.properties) node = (node.properties as Record<string, TSchema>)[key];
    else if (node.patternProperties) node = Object.values(node.patternProperties as object)[0] as TSchema;
    else if (node.items) node = node.items as TSchema;
    else return undefined;
  }
  return node;
}

function buildFileSchema(): TObject {
  interface Tree {
    [key: string]: Tree | TSchema;
  }
  const tree: Tree = {};
  for (const { file, field, schema } of FILE_FIELDS) {
    const keys = file.split('.');
    const last = keys.pop() as string;
    let node = tree;
    for (const key of keys) {
      node[key] ??= {};
      node = node[key] as Tree;
    }
    const leaf = schema ?? schemaAt(StorageConfigSchema, field.split('.'));
    if (!leaf) throw new Error(`config: ${file} maps to unknown field ${field}`);
    node[last] = leaf;
  }
  const toSchema = (node: Tree): TObject =>
    T.Object(
      Object.fromEntries(
        Object.entries(node).map(([key, child]) => [
          key,
          // Every key of the file is optional: what it leaves out comes from defaults and env.
          T.Optional('type' in child || 'anyOf' in child ? (child as TSchema) : toSchema(child as Tree)),
        ]),
      ),
      { additionalProperties: false },
    );
  return toSchema(tree);
}

/** One schema for the whole file: every key optional, none other allowed, at any depth. */
export const ConfigFileSchema = buildFileSchema();

export interface LoadConfigOptions {
  /** The environment: `STORAGE_CONFIG`, the overrides and the `${VAR}` references. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** The file to read (must exist). Default: `STORAGE_CONFIG`, else `config.yaml` if present. */
  file?: string;
  /** Where relative file paths start. Default `process.cwd()`. */
  cwd?: string;
}

/**
 * The configuration: defaults, then the YAML file, then the environment variables, validated
 * once. Throws one `ConfigError` listing every problem (file keys with their line, variables
 * by name); nothing is half-applied. Synchronous, for module-scope use in a Lambda container.
 */
export function loadConfig(options: LoadConfigOptions = {}): StorageConfig {
  const env = options.env ?? process.env;
  const { named, source, path } = configFileLocation(options);
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!(code === 'ENOENT' && named === undefined)) {
      const by = options.file !== undefined ? 'config file' : named ? CONFIG_FILE_VARIABLE : 'config file';
      throw new ConfigError([
        code === 'ENOENT' ? `${by}: no such file: ${path}` : `${by}: cannot read ${path} (${code ?? error})`,
      ]);
    }
  }
  const parsed = text === undefined ? undefined : parseConfigFile(text, { env, source });
  const problems = [...(parsed?.problems ?? [])];
  // A file that cannot be parsed has nothing to check further.
  if (parsed && problems.length > 0 && parsed.keys.size === 0 && problems[0]?.startsWith(`${source}:`)) {
    throw new ConfigError(problems);
  }
  const fromEnv = readEnv(env, parsed?.input ?? {});
  problems.push(...fromEnv.problems);
  let config: StorageConfig | undefined;
  try {
    config = resolveConfig(fromEnv.input);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Problems of the merged configuration, except about keys the file already got wrong
    // (they were left out, so anything said about them would be about a default).
    const reported = new Set(problems.map(pathOf));
    for (const problem of error.problems.map((line) => explain(line, env, parsed))) {
      if (!reported.has(pathOf(problem))) problems.push(problem);
    }
  }
  if (problems.length > 0 || !config) throw new ConfigError(problems);
  return config;
}

/**
 * Where `loadConfig(options)` looks for the file: `path` (absolute), `source` as named in
 * messages, and `named` when it must exist (an explicit file or `STORAGE_CONFIG`).
 */
export function configFileLocation(options: LoadConfigOptions = {}): {
  named: string | undefined;
  source: string;
  path: string;
} {
  const env = options.env ?? process.env;
  const named = options.file ?? (env[CONFIG_FILE_VARIABLE] || undefined);
  const source = named ?? DEFAULT_CONFIG_FILE;
  return { named, source, path: resolve(options.cwd ?? process.cwd(), source) };
}

export interface ParsedConfigFile {
  /** The file's valid settings as `StorageConfig` fields (no defaults, no environment). */
  input: StorageConfigInput;
  /** The file keys present and valid (dotted). */
  keys: Set<string>;
  /** `(source:line)` of a dotted file key, or ''. */
  where(path: string): string;
  /** Every problem in the file; empty when it is valid. */
  problems: string[];
}

const pathOf = (problem: string) => problem.slice(0, problem.indexOf(':'));

/**
 * Parses and validates the text of a configuration file, resolving `${VAR}`, `${VAR:-default}`
 * and `$$` in string values from `env`. Does not throw for a bad file: `problems` lists every
 * problem, and `input` holds the valid settings only (so checks across fields can still run).
 */
export function parseConfigFile(
  text: string,
  { env = process.env, source = DEFAULT_CONFIG_FILE }: { env?: NodeJS.ProcessEnv; source?: string } = {},
): ParsedConfigFile {
  return parseConfigDocument(readConfigDocument(text, source), { env, source });
}

/** `parseConfigFile()` after the YAML is read: the same checks on the file's document. */
export function parseConfigDocument(
  doc: ConfigDocument,
  { env = process.env, source = DEFAULT_CONFIG_FILE }: { env?: NodeJS.ProcessEnv; source?: string } = {},
): ParsedConfigFile {
  const where = (path: string): string => {
    const line = Object.hasOwn(doc.lines, path) ? doc.lines[path] : undefined;
    return line === undefined ? '' : ` (${source}:${line})`;
  };
  if (doc.problems.length > 0) return { input: {}, keys: new Set(), where, problems: [...doc.problems] };
  const raw = (doc.value ?? {}) as unknown;

  const problems: string[] = [];
  const value = interpolate(raw, [], env, problems);
  // A reference that did not resolve is reported once, not again as a wrong type.
  const unresolved = new Set(problems.map(pathOf));
  for (const problem of schemaProblems(ConfigFileSchema, value)) {
    if (!unresolved.has(pathOf(problem))) problems.push(`${problem}${where(pathOf(problem))}`);
  }
  const bad = problems.map(pathOf);
  const isBad = (key: string) =>
    bad.some(
      (path) => path === '(root)' || path === key || path.startsWith(`${key}.`) || key.startsWith(`${path}.`),
    );
  problems.push(...contradictions(value as Record<string, unknown>, where, isBad));

  const input: Record<string, unknown> = {};
  const keys = new Set<string>();
  for (const { file, field, toField } of FILE_FIELDS) {
    const given = getPath(value, file);
    if (given === undefined || isBad(file)) continue;
    keys.add(file);
    setPath(input, field, toField ? toField(given) : given);
  }
  return { input: input as StorageConfigInput, keys, where, problems };
}

function getPath(value: unknown, path: string): unknown {
  let node = value;
  for (const key of path.split('.')) {
    if (!node || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** Two file keys that set one field and disagree. */
function contradictions(
  file: Record<string, unknown>,
  where: (path: string) => string,
  isBad: (path: string) => boolean,
): string[] {
  const problems: string[] = [];
  const section = file && typeof file === 'object' ? file.postgresql : undefined;
  const pg = (section && typeof section === 'object' ? section : {}) as Record<string, unknown>;
  if (
    typeof pg.pool_size === 'number' &&
    typeof pg.max_pool_size === 'number' &&
    !isBad('postgresql.pool_size') &&
    !isBad('postgresql.max_pool_size') &&
    pg.pool_size !== pg.max_pool_size
  ) {
    problems.push(
      `postgresql.pool_size: ${pg.pool_size} and postgresql.max_pool_size: ${pg.max_pool_size} both size the one pool ` +
        `(the pg/neon Pool's max); give one of them${where('postgresql.pool_size')}`,
    );
  }
  if (
    typeof pg.statement_cache_size === 'number' &&
    typeof pg.prepared_statements === 'boolean' &&
    pg.statement_cache_size > 0 !== pg.prepared_statements
  ) {
    problems.push(
      `postgresql.statement_cache_size: ${pg.statement_cache_size} contradicts postgresql.prepared_statements: ` +
        `${pg.prepared_statements} (0 turns prepared statements off); give one of them${where('postgresql.statement_cache_size')}`,
    );
  }
  return problems;
}

const REFERENCE = /\$\$|\$\{([^}]*)\}|\$\{/g;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `value` with every string's `${VAR}` references resolved; problems are collected, not thrown. */
function interpolate(value: unknown, path: string[], env: NodeJS.ProcessEnv, problems: string[]): unknown {
  if (Array.isArray(value))
    return value.map((item, i) => interpolate(item, [...path, String(i)], env, problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, child]) => [key, interpolate(child, [...path, key], env, problems)]),
    );
  }
  if (typeof value !== 'string' || !value.includes('$')) return value;
  const at = path.join('.') || '(root)';
  let whole = false;
  const result = value.replace(REFERENCE, (match, body: string | undefined, offset: number) => {
    if (match === '$$') return '$';
    if (body === undefined) {
      problems.push(`${at}: "\${" without a closing "}" (write $$ for a literal $)`);
      return match;
    }
    const separator = body.indexOf(':-');
    const name = separator === -1 ? body : body.slice(0, separator);
    if (!NAME.test(name)) {
      problems.push(`${at}: \${${body}} is not a variable reference (a name is letters, digits and _)`);
      return match;
    }
    whole = offset === 0 && match.length === value.length;
    const set = env[name];
    // As in the shell, `:-` also replaces a variable that is set but empty.
    if (set !== undefined && (set !== '' || separator === -1)) return set;
    if (separator !== -1) return body.slice(separator + 2);
    problems.push(
      `${at}: \${${name}} is not set and has no default (set ${name}, or write \${${name}:-default})`,
    );
    return match;
  });
  // `pool_size: ${POOL_SIZE}` means a number: a reference standing alone takes the field's type.
  const type = whole ? schemaAt(ConfigFileSchema, path)?.type : undefined;
  if (type === 'boolean' && (result === 'true' || result === 'false')) return result === 'true';
  if ((type === 'integer' || type === 'number') && result.trim() !== '' && Number.isFinite(Number(result))) {
    return Number(result);
  }
  return result;
}

/** Internal field paths → the file key an operator would write, longest first. */
const FIELD_TO_FILE = FILE_FIELDS.reduce(
  // for a field set by two keys, the last listed wins
  (map, { file, field }) => map.set(field, file),
  new Map<string, string>(),
);
const FIELD_PATHS = [...FIELD_TO_FILE.keys()].sort((a, b) => b.length - a.length);

/**
 * A problem from validating the merged configuration, told in the file's terms: the file key
 * (the one the file used, where two keys set one field), and where the value came from.
 */
function explain(problem: string, env: NodeJS.ProcessEnv, parsed: ParsedConfigFile | undefined): string {
  const fileKey = (field: string): string => {
    if (
      field === 'postgresql.poolSize' &&
      parsed?.keys.has('postgresql.pool_size') &&
      !parsed.keys.has('postgresql.max_pool_size')
    ) {
      return 'postgresql.pool_size';
    }
    if (field === 'postgresql.preparedStatements' && parsed?.keys.has('postgresql.statement_cache_size')) {
      return 'postgresql.statement_cache_size';
    }
    return FIELD_TO_FILE.get(field) ?? field;
  };
  const colon = problem.indexOf(': ');
  if (colon === -1) return problem;
  const path = problem.slice(0, colon);
  let body = problem.slice(colon);
  for (const field of FIELD_PATHS) {
    if (field.includes('.')) body = body.replaceAll(field, fileKey(field));
  }
  const field = FIELD_PATHS.find((candidate) => path === candidate || path.startsWith(`${candidate}.`));
  if (!field) return problem;
  const key = fileKey(field) + path.slice(field.length);
  const variable = ENV_FIELDS.find(([name, target]) => target === field && env[name])?.[0];
  const origin = variable ? ` (from ${variable})` : parsed?.keys.has(fileKey(field)) ? parsed.where(key) : '';
  return `${key}${body}${origin}`;
}
