/**
 * What deploy/plugin.cjs adds to, or changes in, the template the framework compiled, apart from
 * roles (deploy/iam.cjs) and monitoring (deploy/monitoring.cjs): API throttling and WebSocket
 * access logs, the fan-out's asynchronous invoke settings and failure queue, schema migrations
 * on every deploy, and the optional custom domains.
 */
const { createHash } = require('node:crypto');
const { readdirSync, readFileSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

/** One JSON line per request in the APIs' access logs. */
const HTTP_ACCESS_LOG = {
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  method: '$context.httpMethod',
  routeKey: '$context.routeKey',
  status: '$context.status',
  responseLength: '$context.responseLength',
  latencyMs: '$context.responseLatency',
  integrationLatencyMs: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
  userAgent: '$context.identity.userAgent',
};
const WEBSOCKET_ACCESS_LOG = {
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  eventType: '$context.eventType',
  routeKey: '$context.routeKey',
  connectionId: '$context.connectionId',
  status: '$context.status',
  integrationLatencyMs: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
  authorizeError: '$context.authorize.error',
};

/** Throttling on both APIs' stages, and the WebSocket stage's access log. */
function apiStages(template, { service, stage, deploy }) {
  const resources = template.Resources;
  const httpStage = resources.HttpApiStage;
  httpStage.Properties.DefaultRouteSettings = {
    ...httpStage.Properties.DefaultRouteSettings,
    ThrottlingRateLimit: deploy.throttle.http.rate,
    ThrottlingBurstLimit: deploy.throttle.http.burst,
  };
  resources.WebsocketsAccessLogGroup = {
    Type: 'AWS::Logs::LogGroup',
    Properties: {
      LogGroupName: `/aws/websocket/${service}-${stage}`,
      RetentionInDays: deploy.logRetentionDays,
    },
  };
  const websocketStage = resources.WebsocketsDeploymentStage;
  websocketStage.Properties.DefaultRouteSettings = {
    ...websocketStage.Properties.DefaultRouteSettings,
    ThrottlingRateLimit: deploy.throttle.websocket.rate,
    ThrottlingBurstLimit: deploy.throttle.websocket.burst,
  };
  websocketStage.Properties.AccessLogSettings = {
    DestinationArn: { 'Fn::GetAtt': ['WebsocketsAccessLogGroup', 'Arn'] },
    Format: JSON.stringify(WEBSOCKET_ACCESS_LOG),
  };
}

/**
 * The `$connect` authorizer is called whether the token is in the query string or in the
 * `Sec-WebSocket-Protocol` header: identity sources would have API Gateway refuse, unasked, a
 * request without the one named.
 */
function authorizerWithoutIdentitySource(template) {
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type === 'AWS::ApiGatewayV2::Authorizer') delete resource.Properties.IdentitySource;
  }
}

/**
 * The fanout function's asynchronous invocations: retried `fanout.maximumRetryAttempts` times,
 * dropped after `fanout.maximumEventAge` seconds, and then kept in a queue (14 days) rather
 * than lost: a subscriber missed them and reads them from the channel's history.
 */
function fanoutFailures(template, { service, stage, deploy, fanoutLogicalId, fanoutRoleLogicalId }) {
  template.Resources.FanoutFailureQueue = {
    Type: 'AWS::SQS::Queue',
    Properties: {
      QueueName: `${service}-${stage}-fanout-failures`,
      MessageRetentionPeriod: 14 * 24 * 3600,
      SqsManagedSseEnabled: true,
    },
  };
  template.Resources.FanoutEventInvokeConfig = {
    Type: 'AWS::Lambda::EventInvokeConfig',
    // Lambda checks the role may send to the destination when the configuration is created.
    DependsOn: [fanoutRoleLogicalId],
    Properties: {
      FunctionName: { Ref: fanoutLogicalId },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: deploy.fanout.maximumRetryAttempts,
      MaximumEventAgeInSeconds: deploy.fanout.maximumEventAge,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['FanoutFailureQueue', 'Arn'] } } },
    },
  };
}

/** SHA-256 over migrations/*.sql, names and contents: changes when a migration is added. */
function migrationsChecksum() {
  const dir = path.join(root, 'migrations');
  const hash = createHash('sha256');
  for (const file of readdirSync(dir)
    .filter((name) => name.endsWith('.sql'))
    .sort()) {
    hash
      .update(file)
      .update('\0')
      .update(readFileSync(path.join(dir, file)))
      .update('\0');
  }
  return hash.digest('hex');
}

/**
 * The custom resource that runs functions/schema-migrations.ts on every deploy (its `Deployment` property
 * changes each time), and every other function updated only after it succeeded: new code never
 * meets an old schema, and a failed migration stops the deploy before any function changes.
 */
function schemaMigrations(template, { migrateLogicalId, migrateTimeout, functionLogicalIds, packagedAt }) {
  template.Resources.SchemaMigrations = {
    Type: 'Custom::SchemaMigrations',
    Properties: {
      ServiceToken: { 'Fn::GetAtt': [migrateLogicalId, 'Arn'] },
      // Seconds CloudFormation waits for the answer (its default is an hour).
      ServiceTimeout: migrateTimeout + 60,
      Migrations: migrationsChecksum(),
      Deployment: packagedAt,
    },
  };
  for (const logicalId of functionLogicalIds) {
    if (logicalId === migrateLogicalId) continue;
    const fn = template.Resources[logicalId];
    fn.DependsOn = [...new Set([...[fn.DependsOn ?? []].flat(), 'SchemaMigrations'])];
  }
}

/** Custom domains for the APIs (`domain.*` parameters), with Route 53 aliases when a zone is given. */
function customDomains(template, { deploy, stage }) {
  const { http, websocket, certificateArn, hostedZoneId } = deploy.domains;
  const add = (prefix, domainName, apiId, stageRef, stageLogicalId) => {
    template.Resources[`${prefix}DomainName`] = {
      Type: 'AWS::ApiGatewayV2::DomainName',
      Properties: {
        DomainName: domainName,
        DomainNameConfigurations: [
          { CertificateArn: certificateArn, EndpointType: 'REGIONAL', SecurityPolicy: 'TLS_1_2' },
        ],
      },
    };
    template.Resources[`${prefix}ApiMapping`] = {
      Type: 'AWS::ApiGatewayV2::ApiMapping',
      DependsOn: [stageLogicalId],
      Properties: { ApiId: apiId, DomainName: { Ref: `${prefix}DomainName` }, Stage: stageRef },
    };
    if (hostedZoneId) {
      template.Resources[`${prefix}DnsRecord`] = {
        Type: 'AWS::Route53::RecordSet',
        Properties: {
          HostedZoneId: hostedZoneId,
          Name: domainName,
          Type: 'A',
          AliasTarget: {
            DNSName: { 'Fn::GetAtt': [`${prefix}DomainName`, 'RegionalDomainName'] },
            HostedZoneId: { 'Fn::GetAtt': [`${prefix}DomainName`, 'RegionalHostedZoneId'] },
          },
        },
      };
    }
  };
  if (http) {
    add('HttpApi', http, { Ref: 'HttpApi' }, '$default', 'HttpApiStage');
    template.Outputs.HttpApiCustomUrl = {
      Description: 'HTTP API on its custom domain',
      Value: `https://${http}`,
    };
  }
  if (websocket) {
    add('Websockets', websocket, { Ref: 'WebsocketsApi' }, stage, 'WebsocketsDeploymentStage');
    template.Outputs.WebsocketCustomUrl = {
      Description: 'WebSocket API on its custom domain',
      Value: `wss://${websocket}`,
    };
  }
}

module.exports = {
  /** serverless.yml `provider.logs.httpApi.format`. */
  httpAccessLogFormat: JSON.stringify(HTTP_ACCESS_LOG),
  apiStages,
  authorizerWithoutIdentitySource,
  customDomains,
  fanoutFailures,
  migrationsChecksum,
  schemaMigrations,
};
