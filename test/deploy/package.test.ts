// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} are CloudFormation Fn::Sub references
/**
 * The prod stage packaged with its sample parameters (deploy/params/prod.sample.yml, as
 * `npm run package:sample` does), once, from a shell full of recognisable secrets and settings
 * that must not reach the deployment; then the template and the zips are inspected for what a
 * production deployment needs: per-function roles with nothing wildcarded, secrets by reference
 * only, VPC and reserved concurrency, throttled and logged APIs, tracing, the fan-out's failure
 * destination, schema migrations on deploy, custom domains, and alarms and a dashboard on
 * metrics the code really emits.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { captureEmf, type Emf } from '../support/emf.js';
import { type EmittedMetric, emittedMetrics } from './emitted-metrics.js';
import { PACKAGE_TIMEOUT_MS, type Packaged, root, serverlessPackage, type Template } from './support.js';

const require = createRequire(import.meta.url);
const { routes } = require('../../deploy/serverless-config.cjs').loadConfigModule() as {
  routes: { operation: string }[];
};
const { accessOf } = require('../../deploy/functions.cjs') as {
  accessOf(name: string): { secrets: string[]; relay?: boolean; invokeFanout?: boolean };
};

/** Values that must appear nowhere in what is deployed. */
const SHELL_SECRETS = {
  DATABASE_URL: 'postgres://kubently:shell-secret-database-password@db.internal:5432/kubently',
  REDIS_URL: 'rediss://:shell-secret-redis-url-password@redis.internal:6380',
  REDIS_PASSWORD: 'shell-secret-redis-password',
  BOOTSTRAP_TOKEN_HASH: 'feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface',
};
const SECRET_MARKERS = ['shell-secret', 'feedfacefeedface'];
const STAGE = 'prod';
const SERVICE = `kubently-storage-${STAGE}`;

let packaged: Packaged;
let template: Template;

beforeAll(async () => {
  packaged = await serverlessPackage(
    ['--stage', STAGE, '--param', 'paramsFile=deploy/params/prod.sample.yml'],
    {
      ...SHELL_SECRETS,
      // The shell would deploy the memory backend without alarms: parameters decide, not the shell.
      STORAGE_BACKEND: 'memory',
      KEY_PREFIX: 'shell-prefix:',
    },
  );
  template = packaged.template;
}, PACKAGE_TIMEOUT_MS);

afterAll(() => vi.unstubAllEnvs());

const resources = (type: string) =>
  Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
const functions = () => resources('AWS::Lambda::Function');
const functionName = (logicalId: string) => template.Resources[logicalId].Properties.FunctionName as string;
const shortName = (logicalId: string) => functionName(logicalId).slice(`${SERVICE}-`.length);
const roleOf = (logicalId: string) =>
  template.Resources[template.Resources[logicalId].Properties.Role['Fn::GetAtt'][0]];
// biome-ignore lint/suspicious/noExplicitAny: IAM statements are any JSON.
type Statement = any;
const statementsOf = (logicalId: string): Statement[] =>
  roleOf(logicalId).Properties.Policies.flatMap(
    (p: { PolicyDocument: { Statement: Statement[] } }) => p.PolicyDocument.Statement,
  );
const text = (value: unknown) => JSON.stringify(value);
const byName = (name: string) => functions().find(([id]) => shortName(id) === name)![0];

describe('secrets and settings', () => {
  it('no secret from the shell is in the template or in any zip, and the shell decides nothing', () => {
    const everything = [
      text(template),
      ...Object.values(packaged.zips).flatMap((files) => [...files.values()].map(String)),
    ];
    for (const marker of SECRET_MARKERS) {
      expect(everything.filter((content) => content.includes(marker))).toEqual([]);
    }
    for (const [id, fn] of functions()) {
      const variables = fn.Properties.Environment.Variables;
      expect(variables.STORAGE_BACKEND, id).toBe('hybrid');
      expect(variables.KEY_PREFIX, id).toBe('');
      for (const variable of Object.keys(SHELL_SECRETS))
        expect(variables[variable], `${id} ${variable}`).toBeUndefined();
    }
  });

  it('each function names only the secrets its role may read, by reference, and may read nothing else', () => {
    for (const [id, fn] of functions()) {
      const references = Object.entries(fn.Properties.Environment.Variables)
        .filter(([name]) => name.endsWith('_SECRET'))
        .map(([, value]) => value as string);
      const reads = statementsOf(id).filter((s) => /^(ssm|secretsmanager):/.test(s.Action[0]));
      const readable = text(reads.flatMap((s) => s.Resource));
      for (const reference of references) expect(readable, `${id} reads ${reference}`).toContain(reference);
      expect(reads.flatMap((s) => s.Action).sort()).toEqual(
        [
          ...new Set(
            references.map((r) =>
              r.includes(':secretsmanager:') ? 'secretsmanager:GetSecretValue' : 'ssm:GetParameter',
            ),
          ),
        ].sort(),
      );
      expect(reads.flatMap((s) => s.Resource).length, id).toBeLessThanOrEqual(references.length * 2);
    }
    // Only the functions that check tokens know where the bootstrap hash is.
    const withHash = functions()
      .filter(([, fn]) => fn.Properties.Environment.Variables.BOOTSTRAP_TOKEN_HASH_SECRET)
      .map(([id]) => shortName(id))
      .sort();
    expect(withHash).toEqual(
      functions()
        .map(([id]) => shortName(id))
        .filter((name) => accessOf(name).secrets.includes('BOOTSTRAP_TOKEN_HASH'))
        .sort(),
    );
    expect(withHash).toEqual(expect.arrayContaining(['kv', 'tokens', 'wsAuthorizer', 'wsDefault']));
    expect(withHash).not.toEqual(expect.arrayContaining(['cleanup']));
    expect(functionName(byName('kv'))).toBe(`${SERVICE}-kv`);
    expect(template.Resources[byName('kv')].Properties.Environment.Variables.SECRETS_MAX_AGE).toBe('300');
  });
});

describe('roles', () => {
  it('every function has a role of its own; the framework made no shared role', () => {
    const roles = functions().map(([id]) => template.Resources[id].Properties.Role['Fn::GetAtt'][0]);
    expect(new Set(roles).size).toBe(functions().length);
    expect(template.Resources.IamRoleLambdaExecution).toBeUndefined();
    expect(resources('AWS::IAM::Role')).toHaveLength(functions().length);
  });

  it('no action is a wildcard and no resource leaves the API, region or account open', () => {
    for (const [id] of functions()) {
      for (const statement of statementsOf(id)) {
        expect(statement.Effect).toBe('Allow');
        for (const action of [statement.Action].flat()) expect(action, id).not.toMatch(/\*/);
        for (const resource of [statement.Resource].flat()) {
          if (resource === '*') {
            // X-Ray's two actions accept no narrower resource.
            expect([...statement.Action].sort(), id).toEqual([
              'xray:PutTelemetryRecords',
              'xray:PutTraceSegments',
            ]);
            continue;
          }
          const arn: string | undefined = typeof resource === 'string' ? resource : resource['Fn::Sub'];
          if (arn === undefined) {
            expect(resource['Fn::GetAtt'], id).toBeDefined();
            continue;
          }
          const [, , service, region, account, ...rest] = arn
            .replace('${AWS::Partition}', 'aws')
            .replace('${AWS::Region}', 'REGION')
            .replace('${AWS::AccountId}', 'ACCOUNT')
            .split(':');
          expect(region, `${id}: ${arn}`).toMatch(/^(REGION|[a-z]+-[a-z]+-\d)$/);
          expect(account, `${id}: ${arn}`).toMatch(/^(ACCOUNT|\d{12})$/);
          if (service === 'execute-api')
            expect(rest.join(':'), id).toMatch(new RegExp(`^\\$\\{WebsocketsApi\\}/${STAGE}/`));
        }
      }
    }
    expect(text(template)).not.toContain('execute-api:*:*:*');
  });

  it('relay functions manage this API stage connections only; publishers invoke fanout; the others neither', () => {
    // What deploy/functions.cjs grants, and what it must grant at least.
    expect(
      functions()
        .filter(([id]) => accessOf(shortName(id)).relay)
        .map(([id]) => shortName(id))
        .sort(),
    ).toEqual(['cleanup', 'fanout', 'publish', 'queues', 'tokens', 'wsDefault', 'wsDisconnect']);
    const manage = (id: string) =>
      statementsOf(id).filter((s) => s.Action.includes('execute-api:ManageConnections'));
    const invoke = (id: string) => statementsOf(id).filter((s) => s.Action.includes('lambda:InvokeFunction'));
    for (const [id] of functions()) {
      const name = shortName(id);
      if (accessOf(name).relay) {
        expect(
          manage(id)
            .flatMap((s) => s.Resource)
            .map((r) => r['Fn::Sub']),
        ).toEqual([
          `arn:\${AWS::Partition}:execute-api:\${AWS::Region}:\${AWS::AccountId}:\${WebsocketsApi}/${STAGE}/POST/@connections/*`,
          `arn:\${AWS::Partition}:execute-api:\${AWS::Region}:\${AWS::AccountId}:\${WebsocketsApi}/${STAGE}/DELETE/@connections/*`,
        ]);
      } else expect(manage(id), name).toEqual([]);
      if (accessOf(name).invokeFanout) {
        expect(invoke(id).flatMap((s) => s.Resource)).toEqual([
          {
            'Fn::Sub': `arn:\${AWS::Partition}:lambda:\${AWS::Region}:\${AWS::AccountId}:function:${SERVICE}-fanout`,
          },
        ]);
      } else expect(invoke(id), name).toEqual([]);
      const allowed = ['logs:', 'xray:', 'ssm:', 'secretsmanager:', 'execute-api:', 'lambda:', 'sqs:'];
      for (const action of statementsOf(id).flatMap((s) => s.Action)) {
        expect(
          allowed.some((prefix) => action.startsWith(prefix)),
          `${name}: ${action}`,
        ).toBe(true);
      }
      const logs = statementsOf(id).find((s) => s.Action.includes('logs:PutLogEvents'));
      expect(logs.Resource).toEqual([
        {
          'Fn::Sub': `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${functionName(id)}:*`,
        },
      ]);
    }
  });
});

describe('network, concurrency, tracing', () => {
  it('every function runs in the VPC the parameters give, its role with the VPC access policy', () => {
    for (const [id, fn] of functions()) {
      expect(fn.Properties.VpcConfig, id).toEqual({
        SubnetIds: ['subnet-0a1b2c3d4e5f60001', 'subnet-0a1b2c3d4e5f60002'],
        SecurityGroupIds: ['sg-0a1b2c3d4e5f60003'],
      });
      expect(text(roleOf(id).Properties.ManagedPolicyArns)).toContain('AWSLambdaVPCAccessExecutionRole');
    }
  });

  it('every function has reserved concurrency (parameters over defaults) and active tracing', () => {
    const concurrency = Object.fromEntries(
      functions().map(([id, fn]) => [shortName(id), fn.Properties.ReservedConcurrentExecutions]),
    );
    expect(concurrency).toMatchObject({ kv: 20, sessions: 20, queues: 20, cleanup: 1, migrate: 1 });
    for (const [id, fn] of functions()) {
      expect(fn.Properties.ReservedConcurrentExecutions, id).toBeGreaterThan(0);
      expect(fn.Properties.TracingConfig, id).toEqual({ Mode: 'Active' });
      expect(fn.Properties.Environment.Variables.POWERTOOLS_TRACE_ENABLED).toBe('true');
    }
  });

  it('deployed bundles carry the tracer and secret fetching, and stay within budget', () => {
    const KB = 1024;
    // bundle.test.ts's hybrid budget (local builds) plus what only deployed builds carry: the
    // tracer with aws-xray-sdk-core and Parameters, about 140 KB.
    const budget = (520 + 160) * KB;
    for (const [name, files] of Object.entries(packaged.zips)) {
      const [bundle] = [...files].filter(([file]) => file.endsWith('.mjs'));
      expect(bundle, name).toBeDefined();
      expect(bundle![1].length, `${name}: ${(bundle![1].length / KB).toFixed(1)} KB`).toBeLessThan(budget);
      expect(String(bundle![1])).not.toContain('is not in this build: it was packaged for a local stage');
      // The catch-all route answers 404/405 from the routes table alone: no storage, no AWS call to trace.
      if (name === 'fallback') continue;
      expect(bundle![1].includes('aws-xray-sdk') || bundle![1].includes('AWSXRay'), name).toBe(true);
    }
  });
});

describe('APIs', () => {
  it('both API stages are throttled by the parameters and write JSON access logs kept for the retention', () => {
    const http = template.Resources.HttpApiStage.Properties;
    expect(http.DefaultRouteSettings).toMatchObject({ ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 });
    const websocket = template.Resources.WebsocketsDeploymentStage.Properties;
    expect(websocket.DefaultRouteSettings).toMatchObject({
      ThrottlingRateLimit: 50,
      ThrottlingBurstLimit: 100,
    });
    for (const stage of [http, websocket]) {
      const logGroup = template.Resources[stage.AccessLogSettings.DestinationArn['Fn::GetAtt'][0]];
      expect(logGroup.Properties.RetentionInDays).toBe(30);
      expect(Object.keys(JSON.parse(stage.AccessLogSettings.Format))).toEqual(
        expect.arrayContaining(['requestId', 'routeKey', 'status', 'integrationError']),
      );
    }
  });

  it('the WebSocket authorizer has no identity source: the token may come in the query or the protocol header', () => {
    const [[, authorizer]] = resources('AWS::ApiGatewayV2::Authorizer') as [[string, { Properties: object }]];
    expect(authorizer.Properties).not.toHaveProperty('IdentitySource');
  });

  it('both APIs get their custom domain, mapping and DNS alias', () => {
    const domains = resources('AWS::ApiGatewayV2::DomainName').map(([, r]) => r.Properties.DomainName);
    expect(domains.sort()).toEqual(['storage-api.example.com', 'storage-ws.example.com']);
    const mappings = resources('AWS::ApiGatewayV2::ApiMapping').map(([, r]) => [
      r.Properties.ApiId.Ref,
      r.Properties.Stage,
    ]);
    expect(mappings.sort()).toEqual([
      ['HttpApi', '$default'],
      ['WebsocketsApi', STAGE],
    ]);
    expect(resources('AWS::Route53::RecordSet')).toHaveLength(2);
  });
});

describe('fan-out and migrations', () => {
  it("the fanout's asynchronous invocations are retried a bounded number of times, then go to an SQS queue", () => {
    const configs = resources('AWS::Lambda::EventInvokeConfig');
    expect(configs).toHaveLength(1);
    expect(configs[0]![1].Properties).toMatchObject({
      FunctionName: { Ref: byName('fanout') },
      MaximumRetryAttempts: 1,
      MaximumEventAgeInSeconds: 300,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['FanoutFailureQueue', 'Arn'] } } },
    });
    expect(template.Resources.FanoutFailureQueue.Type).toBe('AWS::SQS::Queue');
    expect(statementsOf(byName('fanout')).find((s) => s.Action.includes('sqs:SendMessage')).Resource).toEqual(
      [{ 'Fn::GetAtt': ['FanoutFailureQueue', 'Arn'] }],
    );
  });

  it('a custom resource runs the migrate function (with the SQL files) on every deploy, before any other function changes', () => {
    const migrations = template.Resources.SchemaMigrations;
    const migrate = byName('migrate');
    expect(migrations.Properties.ServiceToken).toEqual({ 'Fn::GetAtt': [migrate, 'Arn'] });
    expect(Date.parse(migrations.Properties.Deployment)).toBeGreaterThan(Date.now() - 15 * 60_000);
    expect(migrations.Properties.Migrations).toMatch(/^[0-9a-f]{64}$/);
    for (const [id, fn] of functions())
      if (id !== migrate) expect(fn.DependsOn, id).toContain('SchemaMigrations');
    expect(
      [...packaged.zips.migrate!.keys()].filter((file) => file.startsWith('migrations/')).sort(),
    ).toEqual(expect.arrayContaining(['migrations/0001_initial.sql']));
    expect(template.Resources[migrate].Properties.VpcConfig).toBeDefined();
  });
});

// ---------------------------------------------------------------------------------------

interface MetricRef {
  namespace: string;
  name: string;
  dimensions: Record<string, unknown>;
}

/** Every metric the alarms name, and every one the dashboard's widgets draw. */
function alarmMetrics(): { alarm: string; metric: MetricRef }[] {
  return resources('AWS::CloudWatch::Alarm').flatMap(([id, { Properties: p }]) => {
    const dims = (list: { Name: string; Value: unknown }[]) =>
      Object.fromEntries(list.map((d) => [d.Name, d.Value]));
    if (p.MetricName)
      return [
        { alarm: id, metric: { namespace: p.Namespace, name: p.MetricName, dimensions: dims(p.Dimensions) } },
      ];
    return (
      p.Metrics as { MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions: [] } } }[]
    )
      .filter((m) => m.MetricStat)
      .map((m) => ({
        alarm: id,
        metric: {
          namespace: m.MetricStat!.Metric.Namespace,
          name: m.MetricStat!.Metric.MetricName,
          dimensions: dims(m.MetricStat!.Metric.Dimensions),
        },
      }));
  });
}

function widgetMetrics(): MetricRef[] {
  const body = template.Resources.Dashboard.Properties.DashboardBody['Fn::Sub'] as string;
  const dashboard = JSON.parse(body) as { widgets: { properties: { metrics: unknown[][] } }[] };
  return dashboard.widgets.flatMap((widget) =>
    widget.properties.metrics.map(([namespace, name, ...rest]) => {
      const pairs = rest.filter((part) => typeof part === 'string') as string[];
      const dimensions: Record<string, string> = {};
      for (let i = 0; i < pairs.length; i += 2) dimensions[pairs[i]!] = pairs[i + 1]!;
      return { namespace: namespace as string, name: name as string, dimensions };
    }),
  );
}

/** The namespace and service dimension the functions publish under, from EMF they print. */
async function publishedAs(): Promise<{ namespace: string; dimensions: string[] }> {
  vi.resetModules();
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  vi.stubEnv('POWERTOOLS_DEV', '');
  vi.stubEnv('POWERTOOLS_SERVICE_NAME', SERVICE);
  const capture = captureEmf();
  let emitted: Emf[] = [];
  try {
    const { emitMetric } = await import('../../functions/runtime/metrics.js');
    emitMetric({ name: 'Deadlocks', value: 1, unit: 'Count', dimensions: { backend: 'postgresql' } });
  } finally {
    emitted = capture.stop();
  }
  const emf = emitted[0]!;
  expect(emf.service).toBe(SERVICE);
  const directive = emf._aws.CloudWatchMetrics[0]!;
  return { namespace: directive.Namespace, dimensions: directive.Dimensions[0]! };
}

describe('monitoring', () => {
  it('alarms cover every failure this service can have, each notifying the topic, which mails the on-call address', () => {
    const names = resources('AWS::CloudWatch::Alarm').map(([, r]) => r.Properties.AlarmName as string);
    const expected = [
      'http-5xx-rate',
      ...routes.map((route) => `latency-p99 ${route.operation}`),
      'fallback redis',
      'fallback postgresql',
      'sync-lag postgresql-redis',
      'sync-lag redis-postgresql',
      'journal-depth redis',
      'journal-depth postgresql',
      'pool-utilization postgresql',
      'pool-utilization redis',
      'cleanup-failures',
      'cleanup-duration',
      'deadlocks',
      'relay-failures',
      'fanout-dead-letters',
      'fanout-destination-failures',
      ...functions().flatMap(([id]) => [`errors ${shortName(id)}`, `throttles ${shortName(id)}`]),
    ].map((name) => `${SERVICE} ${name}`);
    expect(names.sort()).toEqual([...new Set(expected)].sort());
    for (const [id, alarm] of resources('AWS::CloudWatch::Alarm')) {
      expect(alarm.Properties.AlarmActions, id).toEqual([{ Ref: 'AlarmTopic' }]);
      expect(alarm.Properties.OKActions, id).toEqual([{ Ref: 'AlarmTopic' }]);
      expect(alarm.Properties.Threshold, id).toEqual(expect.any(Number));
    }
    expect(template.Resources.AlarmEmailSubscription.Properties).toMatchObject({
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
      TopicArn: { Ref: 'AlarmTopic' },
    });
  });

  it('the dashboard draws what the alarms watch', () => {
    const drawn = new Set(widgetMetrics().map((m) => `${m.namespace} ${m.name}`));
    for (const { alarm, metric } of alarmMetrics())
      expect(drawn.has(`${metric.namespace} ${metric.name}`), alarm).toBe(true);
  });

  it('every custom metric an alarm or widget names is one the code emits, in its namespace, with its dimensions', async () => {
    const emitted: EmittedMetric[] = emittedMetrics(root);
    const published = await publishedAs();
    expect(published.dimensions).toEqual(['service', 'backend']);
    const serviceDimensions = published.dimensions.filter((d) => d !== 'backend');
    const custom = [...alarmMetrics().map((a) => a.metric), ...widgetMetrics()].filter(
      (m) => !m.namespace.startsWith('AWS/'),
    );
    expect(custom.length).toBeGreaterThan(30);
    for (const metric of custom) {
      const described = `${metric.name} [${Object.keys(metric.dimensions).join(', ')}]`;
      expect(metric.namespace, described).toBe(published.namespace);
      expect(metric.dimensions.service, described).toBe(SERVICE);
      const own = Object.keys(metric.dimensions)
        .filter((d) => !serviceDimensions.includes(d))
        .sort();
      const match = emitted.find((e) => e.name === metric.name && e.dimensions.join() === own.join());
      expect(match, `${described} is not emitted by the code`).toBeDefined();
    }
    // Operations in latency alarms are the routes the functions record.
    const operations = custom.filter((m) => m.name === 'Latency').map((m) => m.dimensions.operation);
    expect(new Set(operations)).toEqual(new Set(routes.map((r) => r.operation)));
  });
});
