import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { errorResponse } from './errors.js';
import { storageSecrets } from './secrets.js';
import { tracing } from './tracing.js';

type HttpMiddleware = MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>;

/**
 * Adds the Lambda context (function_request_id, cold_start, …) and API Gateway's request id
 * (`correlation_id`) to every log line of the invocation, and clears them afterwards so nothing
 * leaks into the next warm invocation.
 */
export function requestLogging(logger: Logger): HttpMiddleware[] {
  return [
    injectLambdaContext(logger, { resetKeys: true }) as HttpMiddleware,
    {
      name: 'correlationId',
      before: ({ event }) => {
        const requestId = event?.requestContext?.requestId;
        if (requestId) logger.setCorrelationId(requestId);
      },
    },
  ];
}

/**
 * The one place errors become responses (see `errorResponse`). Register it last: middy runs
 * `onError` hooks in reverse order, so it answers before the logging middleware clears its keys.
 */
export function httpErrors(logger: Logger): HttpMiddleware {
  return {
    name: 'httpErrors',
    onError: (request) => {
      if (request.response != null) return;
      request.response = errorResponse(request.error, logger);
    },
  };
}

/**
 * What runs around every function's handler, registered first: its X-Ray subsegment (where
 * tracing is on), then the secrets its storage is configured with (functions/runtime/storage.ts).
 */
export function runtime<Event, Result>(name: string): MiddlewareObj<Event, Result>[] {
  return [tracing<Event, Result>(name), storageSecrets<Event, Result>()];
}
