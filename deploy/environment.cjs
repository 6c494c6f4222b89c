/**
 * The functions' environment for a stage (from its parameters, deploy/parameters.cjs), and the
 * one the configuration is loaded with at package time.
 */
const { loadConfigModule } = require('./serverless-config.cjs');
const { parameterOf } = require('./parameter-definitions.cjs');

/**
 * The functions' environment. Local stages: the storage variables from the shell (as values).
 * Deployed stages: the parameters, secrets as references only.
 */
function environmentOf({ service, stage, local, values, shell, offlinePorts }) {
  const lib = loadConfigModule();
  const secret = new Set(lib.SECRET_VARIABLES);
  const env = {
    // The configuration file (packaged at this path, see package.patterns) and its overrides.
    STORAGE_CONFIG: (local ? shell.STORAGE_CONFIG : values.storageConfig) ?? '',
  };
  for (const [variable] of lib.ENV_FIELDS) {
    const parameter = parameterOf(variable);
    if (local) env[variable] = shell[variable] ?? '';
    else if (secret.has(variable)) env[lib.referenceVariable(variable)] = values[parameter] ?? '';
    else env[variable] = values[parameter] === undefined ? '' : String(values[parameter]);
  }
  if (!local) env.SECRETS_MAX_AGE = String(values.secretsMaxAge);
  Object.assign(env, {
    POWERTOOLS_SERVICE_NAME: `${service}-${stage}`,
    POWERTOOLS_LOG_LEVEL: local ? (shell.LOG_LEVEL ?? 'INFO') : values.logLevel,
    // Local runs have no X-Ray daemon: the tracer is not even loaded there (functions/runtime/tracing.ts).
    POWERTOOLS_TRACE_ENABLED: local ? 'false' : 'true',
    // The bundle is minified; source maps make logged stacks readable.
    NODE_OPTIONS: '--enable-source-maps',
    // WebSocket relay (functions/runtime/relay.ts): the management endpoint postToConnection uses.
    // serverless-offline cannot resolve the Ref, so offline runs (IS_OFFLINE=true) read
    // OFFLINE_WEBSOCKET_ENDPOINT: WEBSOCKET_ENDPOINT from the shell, else offline's own port.
    WEBSOCKET_ENDPOINT: {
      'Fn::Join': [
        '',
        [
          'https://',
          { Ref: 'WebsocketsApi' },
          '.execute-api.',
          { Ref: 'AWS::Region' },
          '.',
          { Ref: 'AWS::URLSuffix' },
          `/${stage}`,
        ],
      ],
    },
    // More subscribers than FANOUT_THRESHOLD and a publish hands the relay to this function.
    FANOUT_FUNCTION_NAME: `${service}-${stage}-fanout`,
  });
  if (local) {
    env.OFFLINE_WEBSOCKET_ENDPOINT = shell.WEBSOCKET_ENDPOINT || `http://localhost:${offlinePorts.websocket}`;
    // Lambda's own endpoint on AWS (LAMBDA_ENDPOINT stays unset there); offline's locally.
    env.OFFLINE_LAMBDA_ENDPOINT = shell.LAMBDA_ENDPOINT || `http://localhost:${offlinePorts.lambda}`;
  }
  return env;
}

/** Values of the right shape for the secrets a deployed function fetches at run time. */
const STAND_INS = {
  DATABASE_URL: 'postgres://fetched-at-run-time/database',
  REDIS_URL: 'redis://fetched-at-run-time:6379',
  REDIS_PASSWORD: 'fetched-at-run-time',
  BOOTSTRAP_TOKEN_HASH: '0'.repeat(64),
};

/**
 * The environment the configuration is loaded with at package time: the functions' own
 * (strings only) and, for each secret they reference, a stand-in of the right shape. Nothing
 * from the shell. `assumeConnections`: stand-ins for connection URLs not referenced too.
 */
function packagingEnvironment(environment, { assumeConnections = false } = {}) {
  const lib = loadConfigModule();
  const env = Object.fromEntries(
    Object.entries(environment).filter(([, value]) => typeof value === 'string'),
  );
  for (const variable of lib.SECRET_VARIABLES) {
    if (env[lib.referenceVariable(variable)]) env[variable] = STAND_INS[variable];
  }
  // To learn which backends a configuration uses before its connection parameters are given.
  if (assumeConnections) {
    env.DATABASE_URL ??= STAND_INS.DATABASE_URL;
    env.REDIS_URL ??= STAND_INS.REDIS_URL;
  }
  return env;
}

module.exports = { environmentOf, packagingEnvironment };
