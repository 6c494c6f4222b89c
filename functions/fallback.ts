/**
 * The HTTP API's `$default` route: every request no route of docs/api.md matched. An unknown path is
 * a 404 `not_found`; a known path with a method it does not serve is a 405
 * `method_not_allowed` with an `Allow` header listing the methods it does. Both in docs/api.md's
 * error shape, never the platform's own body. No token is needed: the routes are public
 * (openapi.yaml), and nothing is read or written.
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { errorBody, type HttpResponse, json } from './runtime/http.js';
import { logger } from './runtime/logger.js';
import { httpErrors, requestLogging } from './runtime/middleware.js';
import { type RouteSpec, routes } from './runtime/routes.js';

/** The table's routes whose path matches `rawPath` (a `{name}` matches one non-empty segment). */
export function routesAt(rawPath: string): RouteSpec[] {
  const segments = rawPath.split('/');
  return (routes as readonly RouteSpec[]).filter((route) => {
    const pattern = route.path.split('/');
    return (
      pattern.length === segments.length &&
      pattern.every((part, i) => (part.startsWith('{') ? segments[i] !== '' : part === segments[i]))
    );
  });
}

const fallback = async (event: APIGatewayProxyEventV2): Promise<HttpResponse> => {
  const method = (event.requestContext?.http?.method ?? 'GET').toUpperCase();
  const rawPath = event.rawPath ?? '/';
  // The path only, never the query string (it may carry a token).
  const shown = JSON.stringify(rawPath.length > 200 ? `${rawPath.slice(0, 200)}…` : rawPath);
  const served = routesAt(rawPath);
  const allowed = [...new Set(served.map((route) => route.method))];
  if (allowed.length === 0 || allowed.includes(method as RouteSpec['method'])) {
    logger.info('no route', { method, path: rawPath });
    return json(
      404,
      errorBody('not_found', `no route ${method} ${shown}; the routes are listed in openapi.yaml`),
    );
  }
  const allow = allowed.join(', ');
  logger.info('method not allowed', { method, path: rawPath, allow });
  return json(
    405,
    errorBody('method_not_allowed', `${method} is not allowed on ${served[0]!.path}; allowed: ${allow}`),
    { allow },
  );
};

export const handler = middy(fallback).use(requestLogging(logger)).use(httpErrors(logger));
