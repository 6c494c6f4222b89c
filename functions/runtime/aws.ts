/**
 * The AWS SDK clients the WebSocket relay uses, created once per container and per endpoint
 * (captured by the tracer where tracing is on), and where their endpoints come from.
 *
 * - `WEBSOCKET_ENDPOINT`: the API Gateway management endpoint
 *   (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`, set by serverless.yml).
 *   Under serverless-offline (`IS_OFFLINE=true`) `OFFLINE_WEBSOCKET_ENDPOINT` is used instead:
 *   offline cannot resolve the `Ref` the deployed value is built from.
 * - `LAMBDA_ENDPOINT`: unset on AWS; serverless-offline's Lambda endpoint locally
 *   (`OFFLINE_LAMBDA_ENDPOINT` under `IS_OFFLINE=true`).
 */
import type { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { captureClient } from './tracing.js';

/** What a WebSocket route's `requestContext` says about the API it came through. */
export interface ApiLocation {
  domainName?: string;
  stage?: string;
}

/**
 * The management endpoint `postToConnection` talks to: the configured one, else (a WebSocket
 * route on AWS without the variable) the one the request came through; `undefined` when
 * neither is known.
 */
export function websocketEndpoint(location?: ApiLocation): string | undefined {
  const configured = offline()
    ? process.env.OFFLINE_WEBSOCKET_ENDPOINT || process.env.WEBSOCKET_ENDPOINT
    : process.env.WEBSOCKET_ENDPOINT;
  if (configured) return configured.replace(/\/+$/, '');
  if (location?.domainName && location.stage) {
    // API Gateway's own domain carries the stage in the path; `$default` stages have none.
    const stage = location.stage === '$default' ? '' : `/${location.stage}`;
    return `https://${location.domainName}${stage}`;
  }
  return undefined;
}

function lambdaEndpoint(): string | undefined {
  const configured = offline()
    ? process.env.OFFLINE_LAMBDA_ENDPOINT || process.env.LAMBDA_ENDPOINT
    : process.env.LAMBDA_ENDPOINT;
  return configured || undefined;
}

function offline(): boolean {
  return process.env.IS_OFFLINE === 'true';
}

// Module scope outlives one invocation: warm containers reuse the clients and their sockets.
const managementClients = new Map<string, ApiGatewayManagementApiClient>();
let lambda: { endpoint: string | undefined; client: LambdaClient } | undefined;

let managementApi: Promise<typeof import('@aws-sdk/client-apigatewaymanagementapi')> | undefined;

/**
 * The management API's SDK module, loaded on first use: importing it costs a cold start some
 * 40 ms, and most invocations of the functions that bundle the relay never post a frame.
 */
export function managementApiModule(): Promise<typeof import('@aws-sdk/client-apigatewaymanagementapi')> {
  managementApi ??= import('@aws-sdk/client-apigatewaymanagementapi');
  return managementApi;
}

/** The management API client for `endpoint`, created on first use. */
export async function managementClient(endpoint: string): Promise<ApiGatewayManagementApiClient> {
  let client = managementClients.get(endpoint);
  if (!client) {
    const { ApiGatewayManagementApiClient } = await managementApiModule();
    // Another call may have created it while the module loaded.
    client =
      managementClients.get(endpoint) ?? captureClient(new ApiGatewayManagementApiClient({ endpoint }));
    managementClients.set(endpoint, client);
  }
  return client;
}

/**
 * The Lambda client (at `LAMBDA_ENDPOINT` when set), created on first use. The SDK module is
 * loaded then too: most invocations never hand off to the fan-out, so their cold starts skip it.
 */
export async function lambdaClient(): Promise<LambdaClient> {
  const endpoint = lambdaEndpoint();
  if (lambda === undefined || lambda.endpoint !== endpoint) {
    const { LambdaClient } = await import('@aws-sdk/client-lambda');
    lambda = { endpoint, client: captureClient(new LambdaClient(endpoint ? { endpoint } : {})) };
  }
  return lambda.client;
}
