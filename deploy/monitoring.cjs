// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} are CloudFormation Fn::Sub references
/**
 * Alarms, their SNS topic and a dashboard for one stage. The custom metrics are named from
 * lib/metrics.ts (`custom(name, dimensions)` refuses a metric or a dimension set the code does not
 * emit) and the operations from the routes table; thresholds are parameters (deploy/parameters.cjs,
 * `alarms.*`). Every alarm notifies the topic when it fires and when it clears; missing data
 * (nothing happened) is not breaching.
 */
const { loadConfigModule } = require('./serverless-config.cjs');

const PERIOD = 300;

/**
 * A custom metric as CloudWatch knows it: the catalog's namespace, the service dimension
 * Powertools adds, and `dimensions`, whose names must be one of the metric's dimension sets.
 */
function custom(service, name, dimensions = {}) {
  const { METRICS, METRICS_NAMESPACE } = loadConfigModule();
  const spec = METRICS[name];
  if (!spec) throw new Error(`deploy/monitoring.cjs: ${name} is not a metric lib/metrics.ts knows`);
  const names = Object.keys(dimensions).sort().join(',');
  if (!spec.dimensionSets.some((set) => [...set].sort().join(',') === names)) {
    throw new Error(`deploy/monitoring.cjs: ${name} is not emitted with dimensions [${names}]`);
  }
  return { namespace: METRICS_NAMESPACE, name, dimensions: { service, ...dimensions } };
}

/** An AWS metric. */
const aws = (namespace, name, dimensions) => ({ namespace, name, dimensions });

const dimensionList = (dimensions) => Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value }));
const logicalName = (text) => text.replace(/(^|[^A-Za-z0-9]+)([A-Za-z0-9])/g, (_, __, c) => c.toUpperCase());

/**
 * The stage's monitoring. `context`: `{ service, stage, deploy, functions }` with `functions` a
 * list of `{ name, logicalId, functionName, timeout }`.
 */
function monitoring({ service, stage, deploy, functions }) {
  const lib = loadConfigModule();
  const serviceName = `${service}-${stage}`;
  const t = deploy.alarms.thresholds;
  const storage = deploy.storage ?? { backend: 'unknown', backends: [], cleanupEnabled: true };
  const hybrid = storage.backend === 'hybrid';
  const topic = deploy.alarms.topicArn ?? { Ref: 'AlarmTopic' };
  const resources = {};
  const widgets = [];

  const alarm = (
    id,
    description,
    { metric, statistic = 'Sum', threshold, operator = 'GreaterThanOrEqualToThreshold', periods = 1 },
  ) => {
    resources[`${logicalName(id)}Alarm`] = {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: {
        AlarmName: `${serviceName} ${id}`,
        AlarmDescription: description,
        Namespace: metric.namespace,
        MetricName: metric.name,
        Dimensions: dimensionList(metric.dimensions),
        ...(statistic.startsWith('p') ? { ExtendedStatistic: statistic } : { Statistic: statistic }),
        Period: PERIOD,
        EvaluationPeriods: periods,
        DatapointsToAlarm: periods,
        Threshold: threshold,
        ComparisonOperator: operator,
        TreatMissingData: 'notBreaching',
        AlarmActions: [topic],
        OKActions: [topic],
      },
    };
  };

  // --- the APIs
  const httpApi = (name) => aws('AWS/ApiGateway', name, { ApiId: { Ref: 'HttpApi' } });
  resources.Http5xxRateAlarm = {
    Type: 'AWS::CloudWatch::Alarm',
    Properties: {
      AlarmName: `${serviceName} http-5xx-rate`,
      AlarmDescription: `HTTP API: 5xx responses over ${t.http5xxPercent}% of requests in 5 minutes`,
      Metrics: [
        { Id: 'errors', ReturnData: false, MetricStat: metricStat(httpApi('5xx'), 'Sum') },
        { Id: 'requests', ReturnData: false, MetricStat: metricStat(httpApi('Count'), 'Sum') },
        {
          Id: 'rate',
          Expression: 'IF(requests > 0, 100 * errors / requests, 0)',
          Label: '5xx %',
          ReturnData: true,
        },
      ],
      EvaluationPeriods: 1,
      DatapointsToAlarm: 1,
      Threshold: t.http5xxPercent,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [topic],
      OKActions: [topic],
    },
  };
  widgets.push(
    graph('HTTP API requests and errors', [httpApi('Count'), httpApi('4xx'), httpApi('5xx')], 'Sum'),
    graph('HTTP API latency p99 (ms)', [httpApi('Latency'), httpApi('IntegrationLatency')], 'p99'),
  );
  const websocket = (name) => aws('AWS/ApiGateway', name, { ApiId: { Ref: 'WebsocketsApi' }, Stage: stage });
  widgets.push(
    graph(
      'WebSocket API',
      ['ConnectCount', 'MessageCount', 'ClientError', 'IntegrationError', 'ExecutionError'].map(websocket),
      'Sum',
    ),
  );

  // --- operations: p99 latency each (a long poll's wait is on top of its threshold)
  const operations = [...new Set(lib.routes.map((route) => route.operation))];
  const latency = operations.map((operation) =>
    custom(serviceName, 'Latency', { operation, backend: storage.backend }),
  );
  for (const metric of latency) {
    const { operation } = metric.dimensions;
    const route = lib.routes.find((r) => r.operation === operation);
    const waitSeconds = route.body?.properties?.wait?.maximum ?? 0;
    alarm(
      `latency-p99 ${operation}`,
      `${operation}: p99 latency over ${t.latencyP99Ms} ms${waitSeconds ? ` + its ${waitSeconds} s long poll` : ''}`,
      {
        metric,
        statistic: 'p99',
        threshold: t.latencyP99Ms + waitSeconds * 1000,
        operator: 'GreaterThanThreshold',
        periods: 2,
      },
    );
  }
  widgets.push(graph('Latency p99 by operation (ms)', latency, 'p99'));

  // --- connection pools, deadlocks
  const pools = storage.backends.map((backend) => custom(serviceName, 'PoolUtilization', { backend }));
  for (const metric of pools) {
    alarm(
      `pool-utilization ${metric.dimensions.backend}`,
      `${metric.dimensions.backend}: pool use at ${t.poolUtilizationPercent}% of its bound for 15 minutes`,
      {
        metric,
        statistic: 'Maximum',
        threshold: t.poolUtilizationPercent,
        periods: 3,
      },
    );
  }
  if (pools.length > 0) {
    widgets.push(
      graph('Pool utilisation (%)', pools, 'Maximum'),
      graph(
        'Pool connections in use and callers waiting',
        storage.backends.flatMap((backend) => [
          custom(serviceName, 'PoolInUse', { backend }),
          custom(serviceName, 'PoolWaiting', { backend }),
        ]),
        'Maximum',
      ),
    );
  }
  if (storage.backends.includes('postgresql')) {
    const deadlocks = custom(serviceName, 'Deadlocks', { backend: 'postgresql' });
    alarm('deadlocks', `PostgreSQL: ${t.deadlocks} or more deadlocks in 5 minutes`, {
      metric: deadlocks,
      threshold: t.deadlocks,
    });
    widgets.push(graph('PostgreSQL deadlocks', [deadlocks], 'Sum'));
  }

  // --- the hybrid: fallbacks, dual-write lag, journals
  if (hybrid) {
    const members = storage.backends;
    const fallbacks = members.map((backend) => custom(serviceName, 'FallbackTriggered', { backend }));
    for (const metric of fallbacks) {
      alarm(
        `fallback ${metric.dimensions.backend}`,
        `hybrid: ${metric.dimensions.backend} failed over to its fallback`,
        {
          metric,
          threshold: t.fallbackTriggers,
        },
      );
    }
    const pairs = members.flatMap((from) => members.filter((to) => to !== from).map((to) => ({ from, to })));
    const lags = pairs.map((pair) => custom(serviceName, 'SyncLag', pair));
    for (const metric of lags) {
      alarm(
        `sync-lag ${metric.dimensions.from}-${metric.dimensions.to}`,
        `hybrid: dual-write lag over ${t.syncLagMs} ms`,
        {
          metric,
          statistic: 'Maximum',
          threshold: t.syncLagMs,
          operator: 'GreaterThanThreshold',
        },
      );
    }
    const journals = members.map((backend) => custom(serviceName, 'JournalDepth', { backend }));
    for (const metric of journals) {
      alarm(
        `journal-depth ${metric.dimensions.backend}`,
        `hybrid: ${t.journalDepth} or more entries waiting in the ${metric.dimensions.backend} journal`,
        {
          metric,
          statistic: 'Maximum',
          threshold: t.journalDepth,
        },
      );
    }
    widgets.push(
      graph('Hybrid fallbacks', fallbacks, 'Sum'),
      graph('Hybrid dual-write lag (ms)', lags, 'Maximum'),
      graph('Hybrid journal depth', journals, 'Maximum'),
    );
  }

  // --- cleanup
  const cleanup = functions.find((f) => f.name === 'cleanup');
  if (cleanup && storage.cleanupEnabled) {
    const failures = custom(serviceName, 'CleanupFailures');
    const duration = custom(serviceName, 'CleanupDurationMs');
    const limitMs = Math.round((cleanup.timeout * 1000 * t.cleanupDurationPercent) / 100);
    alarm('cleanup-failures', 'the scheduled cleanup failed', { metric: failures, threshold: 1 });
    alarm(
      'cleanup-duration',
      `the cleanup took over ${t.cleanupDurationPercent}% of its ${cleanup.timeout} s timeout`,
      {
        metric: duration,
        statistic: 'Maximum',
        threshold: limitMs,
        operator: 'GreaterThanThreshold',
      },
    );
    widgets.push(graph('Cleanup', [duration, failures, custom(serviceName, 'CleanupRows')], 'Maximum'));
  }

  // --- WebSocket relay and the asynchronous fan-out
  const relayFailures = custom(serviceName, 'RelayFailures');
  alarm('relay-failures', `${t.relayFailures} or more WebSocket frames not delivered in 5 minutes`, {
    metric: relayFailures,
    threshold: t.relayFailures,
  });
  const deadLetters = aws('AWS/SQS', 'ApproximateNumberOfMessagesVisible', {
    QueueName: { 'Fn::GetAtt': ['FanoutFailureQueue', 'QueueName'] },
  });
  alarm('fanout-dead-letters', 'fan-outs that failed every attempt wait in the failure queue', {
    metric: deadLetters,
    statistic: 'Maximum',
    threshold: t.deadLetters,
  });
  const fanout = functions.find((f) => f.name === 'fanout');
  const deliveryFailures = aws('AWS/Lambda', 'DestinationDeliveryFailures', {
    FunctionName: { Ref: fanout.logicalId },
  });
  alarm('fanout-destination-failures', 'failed fan-outs could not even be put in the failure queue', {
    metric: deliveryFailures,
    threshold: 1,
  });
  widgets.push(
    graph(
      'Relay failures and fan-out failure queue',
      [relayFailures, deadLetters, deliveryFailures],
      'Maximum',
    ),
  );

  // --- every function: errors and throttles
  const lambda = (name, f) => aws('AWS/Lambda', name, { FunctionName: { Ref: f.logicalId } });
  for (const f of functions) {
    alarm(`errors ${f.name}`, `${f.functionName}: ${t.lambdaErrors} or more errors in 5 minutes`, {
      metric: lambda('Errors', f),
      threshold: t.lambdaErrors,
    });
    alarm(
      `throttles ${f.name}`,
      `${f.functionName}: ${t.lambdaThrottles} or more throttled invocations in 5 minutes (reserved concurrency reached)`,
      {
        metric: lambda('Throttles', f),
        threshold: t.lambdaThrottles,
      },
    );
  }
  widgets.push(
    graph(
      'Function errors',
      functions.map((f) => lambda('Errors', f)),
      'Sum',
    ),
    graph(
      'Function throttles',
      functions.map((f) => lambda('Throttles', f)),
      'Sum',
    ),
    graph(
      'Concurrent executions',
      functions.map((f) => lambda('ConcurrentExecutions', f)),
      'Maximum',
    ),
  );

  if (!deploy.alarms.topicArn) {
    resources.AlarmTopic = { Type: 'AWS::SNS::Topic', Properties: { TopicName: `${serviceName}-alarms` } };
    if (deploy.alarms.email) {
      resources.AlarmEmailSubscription = {
        Type: 'AWS::SNS::Subscription',
        Properties: { TopicArn: { Ref: 'AlarmTopic' }, Protocol: 'email', Endpoint: deploy.alarms.email },
      };
    }
  }
  resources.Dashboard = {
    Type: 'AWS::CloudWatch::Dashboard',
    Properties: { DashboardName: serviceName, DashboardBody: dashboardBody(widgets) },
  };
  return resources;
}

function metricStat(metric, stat) {
  return {
    Metric: {
      Namespace: metric.namespace,
      MetricName: metric.name,
      Dimensions: dimensionList(metric.dimensions),
    },
    Period: PERIOD,
    Stat: stat,
  };
}

/** A line graph of `metrics`, each with `stat`, half the dashboard wide. */
function graph(title, metrics, stat) {
  return {
    type: 'metric',
    width: 12,
    height: 6,
    properties: { title, stat, period: PERIOD, view: 'timeSeries', metrics },
  };
}

/**
 * The dashboard's JSON, as an `Fn::Sub` template: references (an API id, a function name) are
 * written `${LogicalId}` and the region `${AWS::Region}`.
 */
function dashboardBody(widgets) {
  let x = 0;
  let y = 0;
  const placed = widgets.map((widget) => {
    const at = { x, y };
    x += widget.width;
    if (x >= 24) {
      x = 0;
      y += widget.height;
    }
    const { metrics, ...properties } = widget.properties;
    return {
      ...widget,
      ...at,
      properties: {
        ...properties,
        region: '${AWS::Region}',
        metrics: metrics.map((metric) => [
          metric.namespace,
          metric.name,
          ...Object.entries(metric.dimensions).flatMap(([name, value]) => [name, substitution(value)]),
        ]),
      },
    };
  });
  return { 'Fn::Sub': JSON.stringify({ widgets: placed }) };
}

/** A dimension value inside the dashboard's Fn::Sub template. */
function substitution(value) {
  if (typeof value === 'string') return value;
  if (value.Ref) return `\${${value.Ref}}`;
  if (value['Fn::GetAtt']) return `\${${value['Fn::GetAtt'].join('.')}}`;
  throw new Error(`deploy/monitoring.cjs: cannot place ${JSON.stringify(value)} in the dashboard`);
}

module.exports = { monitoring, custom };
