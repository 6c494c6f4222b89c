/**
 * Every deployment parameter: its name, what it is (`help`), how a value is read (`check`, which
 * throws a message saying what is expected) and its default off local stages (`fallback`).
 * deploy/parameters.cjs reads them; docs/deploying.md lists them.
 */
const { loadConfigModule } = require('./serverless-config.cjs');
const { FUNCTION_DEFAULTS, FUNCTIONS } = require('./functions.cjs');

/** The retention periods CloudWatch Logs accepts. */
const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

// ---------------------------------------------------------------------------------------
// kinds of value: each answers the value, or throws a message saying what is expected

const fail = (message) => {
  throw new Error(message);
};
const text = (pattern, expected) => (value) => {
  const string = typeof value === 'number' ? String(value) : value;
  if (typeof string !== 'string' || string === '') fail(`expected ${expected}`);
  if (pattern && !pattern.test(string)) fail(`expected ${expected}, got ${JSON.stringify(string)}`);
  return string;
};
const oneOf = (choices) => (value) =>
  choices.includes(value)
    ? value
    : fail(`expected one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
const integer = (min, max) => (value) => {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (!Number.isInteger(n) || n < min || n > max)
    fail(`expected a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
};
const number = (min, max) => (value) => {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < min || n > max)
    fail(`expected a number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
};
const list = (item, expected) => (value) => {
  const items = Array.isArray(value)
    ? value
    : typeof value === 'string'
      ? value.split(',').map((part) => part.trim())
      : undefined;
  if (!items || items.length === 0 || items.some((entry) => typeof entry !== 'string' || !item.test(entry))) {
    fail(
      `expected a list of ${expected} (comma-separated on the command line), got ${JSON.stringify(value)}`,
    );
  }
  return items;
};
const reference = (value) => {
  const problem =
    typeof value === 'string' ? loadConfigModule().referenceProblem(value) : 'expected a string';
  return problem ? fail(problem) : value;
};
const arn = (service) => text(new RegExp(`^arn:aws[a-z-]*:${service}:`), `an ${service} ARN`);

/** camelCase of a configuration variable: `KEY_PREFIX` → `keyPrefix`. */
const parameterOf = (variable) =>
  variable.toLowerCase().replace(/_([a-z])/g, (_, letter) => letter.toUpperCase());

/**
 * Every parameter: `check` reads a value, `fallback` is the default off local stages, `help`
 * says what it is (messages and docs/deploying.md). The storage ones are lib/config's
 * variables (ENV_FIELDS), secrets among them as references.
 */
function definitions() {
  const lib = loadConfigModule();
  const secret = new Set(lib.SECRET_VARIABLES);
  const storage = lib.ENV_FIELDS.map(([variable, field, kind]) => ({
    name: parameterOf(variable),
    variable,
    secret: secret.has(variable),
    help: secret.has(variable)
      ? `where ${field} is kept: an SSM parameter name (/path) or ARN, or a Secrets Manager secret ARN`
      : `${field} (${variable})`,
    check:
      variable === 'STORAGE_BACKEND'
        ? oneOf(['redis', 'postgresql', 'hybrid'])
        : secret.has(variable)
          ? reference
          : kind === 'number'
            ? number(0, Number.MAX_SAFE_INTEGER)
            : kind === 'boolean'
              ? oneOf([true, false, 'true', 'false'])
              : text(undefined, 'a value'),
  }));
  const concurrency = [...Object.keys(FUNCTIONS), 'default'].map((fn) => ({
    name: `concurrency.${fn}`,
    help:
      fn === 'default'
        ? 'reserved concurrency of a function not listed in deploy/functions.cjs'
        : `reserved concurrency of the ${fn} function`,
    check: integer(1, 10_000),
    fallback: (FUNCTIONS[fn] ?? FUNCTION_DEFAULTS).concurrency,
  }));
  const threshold = (name, fallback, help, check = number(0, 1e9)) => ({
    name: `alarms.${name}`,
    help,
    check,
    fallback,
  });
  return [
    ...storage,
    {
      name: 'storageConfig',
      help: 'the configuration file, relative to the project (STORAGE_CONFIG)',
      check: text(/^[^/]/, 'a path inside the project'),
    },
    {
      name: 'secretsMaxAge',
      help: 'seconds a fetched secret is used before it is fetched again',
      check: integer(0, 86_400),
      fallback: 300,
    },
    {
      name: 'secretsKmsKeyArn',
      help: 'the customer managed KMS key the secrets are encrypted with (default: the AWS managed key)',
      check: arn('kms'),
    },
    {
      name: 'alarmEmail',
      help: 'an address subscribed to the alarm topic',
      check: text(/^[^@\s]+@[^@\s]+$/, 'an email address'),
    },
    {
      name: 'alarmTopicArn',
      help: 'an existing SNS topic for the alarms, instead of one created with the stage',
      check: arn('sns'),
    },
    {
      name: 'logLevel',
      help: "the functions' log level",
      check: oneOf(['DEBUG', 'INFO', 'WARN', 'ERROR']),
      fallback: 'INFO',
    },
    {
      name: 'logRetentionDays',
      help: 'days function and access logs are kept',
      check: oneOf(RETENTION_DAYS),
      fallback: 30,
    },
    {
      name: 'vpc.subnetIds',
      help: 'subnets the functions run in (private, with the database and Redis reachable)',
      check: list(/^subnet-[0-9a-f]+$/, 'subnet ids'),
    },
    {
      name: 'vpc.securityGroupIds',
      help: 'security groups of the functions',
      check: list(/^sg-[0-9a-f]+$/, 'security group ids'),
    },
    {
      name: 'postgresqlMaxConnections',
      help: 'connections the database (or its pooler) takes from these functions: packaging fails when Σ reserved concurrency × pool size exceeds it',
      check: integer(1, 1_000_000),
    },
    ...concurrency,
    {
      name: 'throttle.http.rate',
      help: 'HTTP API: steady requests per second',
      check: number(1, 1e6),
      fallback: 100,
    },
    { name: 'throttle.http.burst', help: 'HTTP API: burst', check: integer(1, 1e6), fallback: 200 },
    {
      name: 'throttle.websocket.rate',
      help: 'WebSocket API: steady messages per second',
      check: number(1, 1e6),
      fallback: 50,
    },
    { name: 'throttle.websocket.burst', help: 'WebSocket API: burst', check: integer(1, 1e6), fallback: 100 },
    {
      name: 'fanout.maximumRetryAttempts',
      help: 'retries of a failed asynchronous fan-out (0–2)',
      check: integer(0, 2),
      fallback: 1,
    },
    {
      name: 'fanout.maximumEventAge',
      help: 'seconds a fan-out may wait to run before it goes to the failure queue',
      check: integer(60, 21_600),
      fallback: 300,
    },
    threshold('http5xxPercent', 1, 'HTTP API: 5xx responses, percent of requests over 5 minutes'),
    threshold(
      'latencyP99Ms',
      1000,
      'p99 latency of one operation (long polls get their longest wait on top)',
    ),
    threshold('poolUtilizationPercent', 80, 'connection pool use, percent of its bound'),
    threshold('fallbackTriggers', 1, 'hybrid: breakers opened in 5 minutes'),
    threshold('syncLagMs', 60_000, 'hybrid: dual-write lag (maximum over 5 minutes)'),
    threshold('journalDepth', 1000, 'hybrid: entries waiting in a journal'),
    threshold('deadlocks', 1, 'PostgreSQL deadlocks in 5 minutes'),
    threshold('cleanupDurationPercent', 80, 'cleanup duration, percent of its timeout', number(1, 100)),
    threshold('relayFailures', 10, 'WebSocket frames not delivered in 5 minutes'),
    threshold('lambdaErrors', 1, 'errors of one function in 5 minutes'),
    threshold('lambdaThrottles', 1, 'throttled invocations of one function in 5 minutes'),
    threshold('deadLetters', 1, 'fan-outs in the failure queue'),
    {
      name: 'domain.http',
      help: 'custom domain name of the HTTP API',
      check: text(/^[a-z0-9.-]+\.[a-z]{2,}$/, 'a domain name'),
    },
    {
      name: 'domain.websocket',
      help: 'custom domain name of the WebSocket API',
      check: text(/^[a-z0-9.-]+\.[a-z]{2,}$/, 'a domain name'),
    },
    {
      name: 'domain.certificateArn',
      help: 'ACM certificate (same region) covering the custom domains',
      check: arn('acm'),
    },
    {
      name: 'domain.hostedZoneId',
      help: 'Route 53 hosted zone: alias records for the custom domains are created in it',
      check: text(/^Z[A-Z0-9]+$/, 'a hosted zone id'),
    },
  ];
}

/** The parameters as a Markdown table (docs/deploying.md holds it: `npm run docs:parameters`). */
function parameterTable() {
  const cell = (text) => String(text).replaceAll('|', '\\|');
  const rows = definitions().map(
    (p) =>
      `| \`${p.name}\` | ${p.fallback === undefined ? '' : `\`${cell(p.fallback)}\``} | ${cell(p.help)} |`,
  );
  return ['| parameter | default | what it is |', '| --- | --- | --- |', ...rows].join('\n');
}

module.exports = { definitions, fail, parameterOf, parameterTable };
