/**
 * Runs in a fresh `node` process (spawned by bench/suites/lambda.ts) inside an extracted function
 * zip: imports the bundled handler and invokes it with API Gateway HTTP API (payload 2.0) events,
 * as the Lambda runtime would in a warm container. Each call gets a fresh event (built before the
 * clock starts); prints one line `RESULT <json>` with p50 / p99 per route.
 *
 * argv: <handler .mjs path> <method> <route path> <key> <warmup> <iterations> <reps>
 * env: BENCH_TOKEN, the token whose SHA-256 is BOOTSTRAP_TOKEN_HASH.
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const [file, method, route, key, warmup, iterations, reps] = process.argv.slice(2);
const { handler } = await import(pathToFileURL(file).href);
const path = route.replace('{key}', encodeURIComponent(key));
const VALUE = JSON.stringify({ value: { cluster: 'prod', pods: 42, ready: true } });

function event(m = method) {
  const now = Date.now();
  const body = m === 'PUT' ? VALUE : undefined;
  return {
    version: '2.0',
    routeKey: `${m} ${route}`,
    rawPath: path,
    rawQueryString: '',
    headers: {
      host: 'api.example.com',
      authorization: `Bearer ${process.env.BENCH_TOKEN}`,
      'content-type': 'application/json',
      'user-agent': 'bench',
    },
    pathParameters: { key },
    ...(body === undefined ? {} : { body }),
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'bench',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method: m, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' },
      requestId: randomUUID(),
      routeKey: `${m} ${route}`,
      stage: '$default',
      time: new Date(now).toISOString(),
      timeEpoch: now,
    },
  };
}

function context() {
  const deadline = Date.now() + 10_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'bench',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:bench',
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/bench',
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
}

async function call(m = method) {
  const e = event(m);
  const c = context();
  const t = performance.now();
  const response = await handler(e, c);
  const ms = performance.now() - t;
  if (response.statusCode >= 300) throw new Error(`${m} ${path}: ${response.statusCode} ${response.body}`);
  return ms;
}

// A GET needs the key to exist.
await call('PUT');
const quantile = (sorted, q) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
const runs = [];
for (let r = 0; r < Number(reps); r++) {
  for (let i = 0; i < Number(warmup); i++) await call();
  const samples = [];
  for (let i = 0; i < Number(iterations); i++) samples.push(await call());
  samples.sort((a, b) => a - b);
  runs.push({ p50: quantile(samples, 0.5), p99: quantile(samples, 0.99) });
}
process.stdout.write(`\nRESULT ${JSON.stringify(runs)}\n`);
