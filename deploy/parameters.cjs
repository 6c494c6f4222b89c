/**
 * The deployment's parameters: what a stage is deployed with, read and checked once, before
 * anything is packaged. serverless.yml: `custom.deploy: ${file(./deploy/parameters.cjs)}`; the
 * result gives the functions' environment and everything deploy/plugin.cjs adds to the template.
 *
 * Where values come from (first wins): `--param "name=value"` on the command line, then the
 * stage's parameters file — `deploy/params/<stage>.yml`, or the file `--param
 * "paramsFile=<path>"` names — then the parameter's default. Never the shell: a deployed stage is
 * exactly what its parameters say. A parameters file nests names (`vpc: {subnetIds: […]}` is
 * `vpc.subnetIds`); on the command line a list is comma-separated.
 *
 * Local stages (`dev`: `npm start`, `serverless offline`, a `package` without `--stage`) need
 * no parameter: the storage settings come from the shell as plain variables, as they always did.
 * Every other stage must name its backend, the bootstrap token hash and the secrets its backend
 * needs (as references: lib/config/secrets.ts), and where alarms go; packaging fails listing
 * every parameter missing or wrong, and refuses the memory backend and configuration files
 * that hold secrets.
 */
const { existsSync, readFileSync } = require('node:fs');
const path = require('node:path');
const { parse } = require('yaml');
const { loadConfigModule } = require('./serverless-config.cjs');
const { environmentOf, packagingEnvironment } = require('./environment.cjs');
const { definitions, fail, parameterOf } = require('./parameter-definitions.cjs');

const root = path.join(__dirname, '..');
/** Stages that run on this machine (or a developer's sandbox account) with the shell's settings. */
const LOCAL_STAGES = ['dev'];
const PARAMS_FILE = 'paramsFile';

// ---------------------------------------------------------------------------------------
// sources

/** `{ 'a.b': value }` from `{ a: { b: value } }` (lists stay values). */
function flatten(object, prefix = '', into = {}) {
  for (const [key, value] of Object.entries(object ?? {})) {
    const name = prefix + key;
    if (value && typeof value === 'object' && !Array.isArray(value)) flatten(value, `${name}.`, into);
    else into[name] = value;
  }
  return into;
}

/** `--param` values (osls passes them as `name=value` strings). */
function commandLine(options) {
  const given = options.param == null ? [] : [options.param].flat();
  const values = {};
  for (const item of given) {
    const at = String(item).indexOf('=');
    if (at <= 0) fail(`--param ${JSON.stringify(item)}: expected name=value`);
    values[item.slice(0, at)] = item.slice(at + 1).trim();
  }
  return values;
}

/** The stage's parameters file: `{ file, values }` (values empty when there is none). */
function parametersFile(stage, named) {
  const relative = named ?? `deploy/params/${stage}.yml`;
  const file = path.resolve(root, relative);
  if (!existsSync(file)) {
    if (named !== undefined) fail(`${PARAMS_FILE}: no such file: ${relative}`);
    return { file: undefined, values: {} };
  }
  let document;
  try {
    document = parse(readFileSync(file, 'utf8')) ?? {};
  } catch (error) {
    fail(`${relative}: not valid YAML (${error.message})`);
  }
  if (typeof document !== 'object' || Array.isArray(document))
    fail(`${relative}: expected a mapping of parameters`);
  return { file: relative, values: flatten(document) };
}

// ---------------------------------------------------------------------------------------

/**
 * The parameters of `stage`, checked: `{ values, problems }`, values by name (absent when unset
 * without a default). `sources` are the command line's and the file's values.
 */
function readParameters(stage, sources) {
  const local = LOCAL_STAGES.includes(stage);
  const known = definitions();
  const byName = new Map(known.map((definition) => [definition.name, definition]));
  const problems = [];
  const values = {};
  const given = { ...sources.file, ...sources.commandLine };
  for (const name of Object.keys(given)) {
    if (!byName.has(name)) problems.push(`${name}: unknown parameter${suggestion(name, [...byName.keys()])}`);
  }
  for (const definition of known) {
    const raw = given[definition.name];
    if (raw === undefined || raw === null || raw === '') {
      if (definition.fallback !== undefined) values[definition.name] = definition.fallback;
      continue;
    }
    if (local && definition.variable) {
      problems.push(
        `${definition.name}: local stages take the storage settings from the shell (${definition.variable})`,
      );
      continue;
    }
    try {
      values[definition.name] = definition.check(raw);
    } catch (error) {
      problems.push(`${definition.name}: ${error.message}`);
    }
  }
  return { values, problems, definitions: known };
}

function suggestion(name, names) {
  const lower = name.toLowerCase();
  const close = names.find(
    (candidate) =>
      candidate.toLowerCase() === lower ||
      candidate.endsWith(`.${name}`) ||
      candidate.toLowerCase().startsWith(lower),
  );
  return close ? ` (did you mean ${close}?)` : '';
}

/**
 * What a deployed (non-local) stage's parameters must also satisfy, with the configuration they
 * produce: a backend that is not memory, the bootstrap hash, a reference for every secret the
 * backend uses and none written in the configuration file, somewhere for alarms to go, and
 * enough database connections for the reserved concurrency.
 */
function deployedStageProblems(values, environment) {
  const lib = loadConfigModule();
  const problems = [];
  const result = { problems, config: undefined };
  const missing = (name, why) => problems.push(`${name}: required${why ? ` (${why})` : ''}`);
  if (values.storageBackend === undefined)
    missing('storageBackend', 'redis, postgresql or hybrid; memory keeps nothing');
  if (values.bootstrapTokenHash === undefined)
    missing('bootstrapTokenHash', 'where the SHA-256 of the first admin token is kept');
  if (values.alarmEmail === undefined && values.alarmTopicArn === undefined)
    missing('alarmEmail or alarmTopicArn', 'where alarms go');
  if ((values['vpc.subnetIds'] === undefined) !== (values['vpc.securityGroupIds'] === undefined)) {
    problems.push('vpc.subnetIds and vpc.securityGroupIds: give both or neither');
  }
  if (
    (values['domain.http'] !== undefined || values['domain.websocket'] !== undefined) &&
    values['domain.certificateArn'] === undefined
  ) {
    missing('domain.certificateArn', 'for the custom domains');
  }
  if (values.storageBackend === undefined) {
    if (values.databaseUrl === undefined && values.redisUrl === undefined) {
      missing(
        'databaseUrl and/or redisUrl',
        "the backend's connection URL: postgresql needs databaseUrl, redis redisUrl, hybrid both",
      );
    }
    return result;
  }

  const config = packagedConfig(environment, problems);
  if (!config) return result;
  result.config = config;
  const used = lib.backendsUsed(config);
  if (used.has('postgresql') && values.databaseUrl === undefined)
    missing('databaseUrl', 'the configuration uses postgresql');
  if (used.has('redis') && values.redisUrl === undefined) missing('redisUrl', 'the configuration uses redis');
  if (used.has('postgresql') && config.postgresql.driver === 'pglite') {
    problems.push('postgresDriver: pglite is embedded and local only; deploy with pg or neon');
  }
  if (used.has('postgresql') && values.postgresqlMaxConnections !== undefined) {
    const reserved = Object.entries(values)
      .filter(([name]) => name.startsWith('concurrency.') && name !== 'concurrency.default')
      .reduce((sum, [, n]) => sum + n, 0);
    // Each container holds its pool and, with LISTEN on, one listening connection.
    const perContainer = config.postgresql.poolSize + (config.postgresql.listen ? 1 : 0);
    if (reserved * perContainer > values.postgresqlMaxConnections) {
      problems.push(
        `postgresqlMaxConnections: ${values.postgresqlMaxConnections} is less than the ${reserved * perContainer} connections ` +
          `the functions may open (reserved concurrency ${reserved} × ${perContainer} per container: postgresql.pool_size ` +
          `${config.postgresql.poolSize}${config.postgresql.listen ? ' + 1 for LISTEN' : ''}); lower concurrency.* or the pool size, or put a pooler in front`,
      );
    }
  }
  return result;
}

/**
 * The configuration the deployed functions will load, with stand-ins for the secrets they fetch
 * at run time; problems (an invalid file, secrets written in it) are added to `problems`.
 */
function packagedConfig(environment, problems) {
  const lib = loadConfigModule();
  try {
    // Connection URLs not given are assumed here, so a missing one is named as its parameter.
    const env = packagingEnvironment(environment, { assumeConnections: true });
    const config = lib.loadConfig({ env, cwd: root });
    problems.push(...secretsInFile(environment));
    return config;
  } catch (error) {
    if (!Array.isArray(error?.problems)) throw error;
    problems.push(...error.problems.map((problem) => `configuration: ${problem}`));
    return undefined;
  }
}

/** A deployed stage's configuration file must not hold a secret: the file is packaged. */
function secretsInFile(environment) {
  const lib = loadConfigModule();
  const { path: file, source } = lib.configFileLocation({
    cwd: root,
    file: environment.STORAGE_CONFIG || undefined,
  });
  if (!existsSync(file)) return [];
  const document = lib.readConfigDocument(readFileSync(file, 'utf8'), source).value ?? {};
  const problems = [];
  for (const variable of lib.SECRET_VARIABLES) {
    const field = lib.ENV_FIELDS.find(([name]) => name === variable)[1];
    for (const { file: key } of lib.FILE_FIELDS.filter((entry) => entry.field === field)) {
      const value = key
        .split('.')
        .reduce((node, part) => (node && typeof node === 'object' ? node[part] : undefined), document);
      // A reference to a variable is fine: the function resolves it from its environment.
      if (typeof value === 'string' && !/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(value.trim())) {
        problems.push(
          `${source}: ${key} is written in the file, which is packaged with the functions; remove it (or write \${${variable}}) and give parameter ${parameterOf(variable)}`,
        );
      }
    }
  }
  return problems;
}

/** A local stage's configuration as the shell gives it, or undefined when it does not load (custom.storage says why). */
function localConfig() {
  try {
    return loadConfigModule().loadConfig({ cwd: root });
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------

/**
 * Everything a stage is deployed with, or an error listing every problem (no stack trace:
 * serverless prints `stack` when there is one).
 */
async function deployment({ options = {}, resolveConfigurationProperty } = {}) {
  const stage = options.stage ?? 'dev';
  const local = LOCAL_STAGES.includes(stage);
  const service = resolveConfigurationProperty
    ? await resolveConfigurationProperty(['service'])
    : 'kubently-storage';
  const offline = resolveConfigurationProperty
    ? ((await resolveConfigurationProperty(['custom', 'serverless-offline'])) ?? {})
    : {};
  const offlinePorts = {
    websocket: options.websocketPort ?? offline.websocketPort ?? 3001,
    lambda: options.lambdaPort ?? offline.lambdaPort ?? 3002,
  };

  const problems = [];
  let sources = { commandLine: {}, file: {} };
  let file;
  try {
    const commandLineValues = commandLine(options);
    const { [PARAMS_FILE]: named, ...rest } = commandLineValues;
    const read = parametersFile(stage, named);
    file = read.file;
    sources = { commandLine: rest, file: read.values };
  } catch (error) {
    problems.push(error.message);
  }
  const { values, problems: parameterProblems } = readParameters(stage, sources);
  problems.push(...parameterProblems);
  const environment = environmentOf({ service, stage, local, values, shell: process.env, offlinePorts });
  let config;
  if (local) config = localConfig();
  else {
    const checked = deployedStageProblems(values, environment);
    problems.push(...checked.problems);
    config = checked.config;
  }
  if (problems.length > 0) {
    const where = file
      ? ` (parameters file ${file}, then --param)`
      : ' (--param name=value, or deploy/params/<stage>.yml)';
    const message = `stage ${stage}: its parameters are missing or wrong${where}:\n  - ${problems.join('\n  - ')}\nSee docs/deploying.md (Parameters).`;
    const refusal = new Error(message);
    refusal.stack = message;
    throw refusal;
  }

  const lib = loadConfigModule();
  return {
    stage,
    local,
    parametersFile: file ?? null,
    environment,
    /** The configuration file packaged with every function (read from /var/task). */
    configFile: environment.STORAGE_CONFIG || 'config.yaml',
    /** Secret references by variable, for the functions' roles. */
    secrets: Object.fromEntries(
      lib.SECRET_VARIABLES.filter((variable) => values[parameterOf(variable)] !== undefined).map(
        (variable) => [variable, values[parameterOf(variable)]],
      ),
    ),
    secretsKmsKeyArn: values.secretsKmsKeyArn ?? null,
    tracing: !local,
    logRetentionDays: values.logRetentionDays,
    vpc: values['vpc.subnetIds']
      ? { subnetIds: values['vpc.subnetIds'], securityGroupIds: values['vpc.securityGroupIds'] }
      : null,
    concurrency: Object.fromEntries(
      Object.entries(values)
        .filter(([name]) => name.startsWith('concurrency.'))
        .map(([name, n]) => [name.slice('concurrency.'.length), n]),
    ),
    throttle: {
      http: { rate: values['throttle.http.rate'], burst: values['throttle.http.burst'] },
      websocket: { rate: values['throttle.websocket.rate'], burst: values['throttle.websocket.burst'] },
    },
    fanout: {
      maximumRetryAttempts: values['fanout.maximumRetryAttempts'],
      maximumEventAge: values['fanout.maximumEventAge'],
    },
    alarms: {
      email: values.alarmEmail ?? null,
      topicArn: values.alarmTopicArn ?? null,
      thresholds: Object.fromEntries(
        Object.entries(values)
          .filter(([name]) => name.startsWith('alarms.'))
          .map(([name, n]) => [name.slice('alarms.'.length), n]),
      ),
    },
    domains: {
      http: values['domain.http'] ?? null,
      websocket: values['domain.websocket'] ?? null,
      certificateArn: values['domain.certificateArn'] ?? null,
      hostedZoneId: values['domain.hostedZoneId'] ?? null,
    },
    /** The backend and what it reaches, for the alarms (null: a local configuration that does not load). */
    storage: config
      ? {
          backend: config.backend,
          backends: [...lib.backendsUsed(config)].sort(),
          postgresPoolSize: config.postgresql.poolSize,
          cleanupEnabled: config.ttl.enabled,
        }
      : null,
    /** The configuration file and variables as the functions load them, stand-ins for secrets. */
    packagingEnvironment: local ? null : packagingEnvironment(environment),
  };
}

module.exports = deployment;
module.exports.LOCAL_STAGES = LOCAL_STAGES;
module.exports.definitions = definitions;
module.exports.packagingEnvironment = packagingEnvironment;
