/**
 * The whole table of HTTP routes (route-specs.ts, function by function) and the error bodies
 * every route may answer. The OpenAPI file (`openapi.yaml`, `npm run openapi`) is generated from
 * them, and a test holds `serverless.yml`, this table and the OpenAPI file to the same set of
 * routes. A function serving routes builds only its own (`routesOf`).
 */
// A namespace import esbuild can tree-shake: TypeBox's `Type` object holds every builder.
import * as T from '@sinclair/typebox';
import { type Route, type RouteSpec, routeGroups, routeKey } from './route-specs.js';

export * from './route-specs.js';

export const ErrorBody = T.Object(
  {
    error: T.Object({
      code: T.Union(
        [
          'bad_request',
          'unauthorized',
          'forbidden',
          'not_found',
          'conflict',
          'payload_too_large',
          'unavailable',
          'internal',
          'method_not_allowed',
        ].map((code) => T.Literal(code)),
      ),
      message: T.String(),
    }),
  },
  { $id: 'Error' },
);

/**
 * API Gateway's own answer, not a function's: 429 when the stage's throttle (`throttle.http.*`)
 * refuses the request, 500 when the function itself failed (crashed, timed out or could not be
 * invoked).
 */
export const GatewayErrorBody = T.Object(
  { message: T.String({ description: 'e.g. "Too Many Requests", "Internal Server Error"' }) },
  { $id: 'GatewayError' },
);

export const routes: readonly Route[] = [
  ...routeGroups.health(),
  ...routeGroups.kv(),
  ...routeGroups.sessions(),
  ...routeGroups.queues(),
  ...routeGroups.publish(),
  ...routeGroups.tokens(),
];

/** The route with this API Gateway route key (`PUT /kv/{key}`). */
export function routeFor(key: string): RouteSpec | undefined {
  return (routes as readonly RouteSpec[]).find((route) => routeKey(route) === key);
}
