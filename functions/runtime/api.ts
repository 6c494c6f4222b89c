/**
 * The HTTP pipeline every API function shares: route lookup, token check, path / query / body
 * parsing and validation against the route's schemas (`route-specs.ts`), then the route's handler,
 * with errors mapped in one place and one latency metric per request. Handlers stay thin:
 * they get checked input and a principal, call lib, and shape the answer.
 */
import middy from '@middy/core';
import type { Static, TSchema } from '@sinclair/typebox';
// By name: the `Value` object holds every value function (cast, convert, diff, …).
import { Errors } from '@sinclair/typebox/errors';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { allows, authenticate, authorize, type Principal, requestToken } from '../../lib/auth.js';
import { ForbiddenError, NotFoundError, PayloadTooLargeError, ValidationError } from '../../lib/errors.js';
import { BODY_OVERHEAD_BYTES, BODY_VALUE_MULTIPLE } from '../../lib/limits.js';
import type { Storage } from '../../lib/storage/types.js';
import type { HttpResponse } from './http.js';
import { logger } from './logger.js';
import { recordOperation, recordPools } from './metrics.js';
import { httpErrors, requestLogging, runtime } from './middleware.js';
import {
  type FunctionName,
  pathParameters,
  type Route,
  type RouteKey,
  type RouteSpec,
  routeKey,
  routesOf,
} from './route-specs.js';
import { describeSchemaError, fieldPath } from './schema-errors.js';
import { getStorage, getStorageConfig } from './storage.js';

export interface ApiRequest<Body = Record<string, unknown>, Query = Record<string, string>> {
  event: APIGatewayProxyEventV2;
  /** The Lambda context: `getRemainingTimeInMillis()` bounds long polls. */
  context: Context;
  route: RouteSpec;
  storage: Storage;
  /** The verified token's principal (routes without scopes get an anonymous one). */
  principal: Principal;
  /** Path parameters, decoded, present for every `{name}` of the route. */
  params: Record<string, string>;
  query: Query;
  body: Body;
  /** Throws `ForbiddenError` unless the principal's resource globs match `resource`, a name the caller sent. */
  authorizeResource(resource: string): void;
  /**
   * Throws `ForbiddenError` unless the principal's resource globs match `resource`, read from a
   * stored record the caller named as `what` (`session "…"`): the message names `what`, never
   * `resource`, which the caller may not know and must not learn.
   */
  authorizeRecord(resource: string, what: string): void;
  /** Whether the principal's resource globs match `resource` (for filtering lists). */
  allowsResource(resource: string): boolean;
}

/** The routes table's entry for a route key (`PUT /kv/{key}`). */
type RouteAt<Key extends RouteKey> = Key extends `${infer Method} ${infer Path}`
  ? Extract<Route, { method: Method; path: Path }>
  : never;

/** The checked request body of a route: its body schema's type; `{}` for a route without a body. */
export type RouteBody<Key extends RouteKey> =
  RouteAt<Key> extends { body: infer Schema extends TSchema } ? Static<Schema> : Record<string, never>;

/** The checked query of a route: its query schema's type; `{}` for a route without a query. */
export type RouteQuery<Key extends RouteKey> =
  RouteAt<Key> extends { query: infer Schema extends TSchema } ? Static<Schema> : Record<string, never>;

/** The request a route's handler gets, typed from the route's schemas. */
export type RouteRequest<Key extends RouteKey> = ApiRequest<RouteBody<Key>, RouteQuery<Key>>;

/** The key of each route in `Of` (distributes over a union of routes). */
type KeyOf<Of extends Route> = Of extends Route ? `${Of['method']} ${Of['path']}` : never;

/** One handler for each route of function `Fn`, each typed by its route's schemas. */
export type RouteHandlers<Fn extends FunctionName> = {
  [Key in KeyOf<Extract<Route, { fn: Fn }>>]: (
    request: RouteRequest<Key>,
  ) => Promise<APIGatewayProxyStructuredResultV2>;
};

type CheckedHandler = (request: ApiRequest) => Promise<APIGatewayProxyStructuredResultV2>;

const ANONYMOUS: Principal = { id: 'anonymous', identity: 'anonymous', scopes: [], resources: [] };

/**
 * The Lambda handler of one function: `typedHandlers` maps each of the function's route keys
 * (`PUT /kv/{key}`) to its handler, which gets the body and query its route's schemas describe;
 * the set must equal the routes table's for `fn`.
 */
export function httpApi<Fn extends FunctionName>(fn: Fn, typedHandlers: RouteHandlers<Fn>) {
  // Each request's body and query are checked against its route's schemas before its handler runs,
  // so the handler's types hold.
  const handlers = typedHandlers as unknown as Record<string, CheckedHandler>;
  const own = routesOf(fn);
  const missing = own.filter((route) => !handlers[routeKey(route)]).map(routeKey);
  const extra = Object.keys(handlers).filter((key) => !own.some((route) => routeKey(route) === key));
  if (missing.length > 0 || extra.length > 0) {
    throw new Error(
      `function ${fn}: handlers missing for [${missing.join(', ')}], unknown [${extra.join(', ')}]`,
    );
  }

  const serve = async (
    event: APIGatewayProxyEventV2,
    context: Context,
  ): Promise<APIGatewayProxyStructuredResultV2> => {
    const route = findRoute(own, event);
    if (!route) throw new NotFoundError(`no route ${event.requestContext?.http?.method} ${event.rawPath}`);
    const storage = getStorage();
    const principal = route.scopes
      ? await authenticate(storage.tokens, requestToken(event.headers))
      : ANONYMOUS;
    if (route.scopes && !route.scopes.some((scope) => allows(principal, { scope }))) {
      authorize(principal, { scope: route.scopes[0]! });
    }
    const request: ApiRequest = {
      event,
      context,
      route,
      storage,
      principal,
      params: pathValues(route, event),
      query: queryValues(route, event),
      body: bodyValue(route, event),
      authorizeResource(resource) {
        if (anyScopeAllows(route, principal, resource)) return;
        throw new ForbiddenError(
          `token may not access ${JSON.stringify(resource)} (its resources: ${principal.resources.join(', ')})`,
        );
      },
      authorizeRecord(resource, what) {
        if (anyScopeAllows(route, principal, resource)) return;
        throw new ForbiddenError(
          `token may not access ${what}: it lies outside the token's resources (${principal.resources.join(', ')})`,
        );
      },
      allowsResource: (resource) => anyScopeAllows(route, principal, resource),
    };
    return handlers[routeKey(route)]!(request);
  };

  return middy(serve)
    .use(runtime(fn))
    .use(operationMetrics(own))
    .use(requestLogging(logger))
    .use(httpErrors(logger));
}

function anyScopeAllows(route: RouteSpec, principal: Principal, resource: string): boolean {
  return (route.scopes ?? []).some((scope) => allows(principal, { scope, resource }));
}

/**
 * API Gateway names the matched route in `routeKey`; a `$default` route or a hand-built event
 * may not, so the method and path are matched against the function's routes as a fallback.
 */
function findRoute(own: RouteSpec[], event: APIGatewayProxyEventV2): RouteSpec | undefined {
  const byKey = own.find((route) => routeKey(route) === event.routeKey);
  if (byKey) return byKey;
  const method = event.requestContext?.http?.method?.toUpperCase();
  const segments = (event.rawPath ?? '').split('/');
  return own.find((route) => {
    if (route.method !== method) return false;
    const pattern = route.path.split('/');
    return (
      pattern.length === segments.length &&
      pattern.every((part, i) => part.startsWith('{') || part === segments[i])
    );
  });
}

function pathValues(route: RouteSpec, event: APIGatewayProxyEventV2): Record<string, string> {
  const names = pathParameters(route.path);
  const values: Record<string, string> = {};
  const rawSegments = (event.rawPath ?? '').split('/');
  const patternSegments = route.path.split('/');
  for (const name of names) {
    let value = event.pathParameters?.[name];
    if (value === undefined) {
      // Hand-built events (and some proxies) carry only the path: take the segment, decoded.
      const index = patternSegments.indexOf(`{${name}}`);
      const raw =
        index >= 0 && rawSegments.length === patternSegments.length ? rawSegments[index] : undefined;
      if (raw !== undefined) value = decodeSegment(name, raw);
    }
    if (value === undefined || value === '') throw new ValidationError(name, 'is required in the path');
    values[name] = value;
  }
  return values;
}

function decodeSegment(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ValidationError(name, 'is not a valid URL-encoded path segment');
  }
}

function queryValues(route: RouteSpec, event: APIGatewayProxyEventV2): Record<string, string> {
  const query: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) {
    if (value !== undefined) query[name] = value;
  }
  if (!route.query) {
    const names = Object.keys(query);
    if (names.length > 0)
      throw new ValidationError('query', `this route takes no query parameters, got ${names.join(', ')}`);
    return query;
  }
  check(route.query, query, 'query');
  return query;
}

function bodyValue(route: RouteSpec, event: APIGatewayProxyEventV2): Record<string, unknown> {
  const text = bodyText(event);
  if (!route.body) {
    // Some clients send `{}` (or nothing but whitespace) with every request; anything else is a mistake.
    if (text !== undefined && text.trim() !== '' && text.trim() !== '{}') {
      throw new ValidationError('body', 'this route takes no request body');
    }
    return {};
  }
  if (text === undefined || text.trim() === '') {
    if (route.bodyRequired) throw new ValidationError('body', 'is required: a JSON object');
    return {};
  }
  const contentType = headerValue(event.headers, 'content-type');
  if (contentType !== undefined && !/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType.trim())) {
    throw new ValidationError(
      'content-type',
      `must be application/json, got ${JSON.stringify(contentType.slice(0, 100))}`,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new ValidationError('body', `is not valid JSON (${(error as Error).message})`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ValidationError(
      'body',
      `must be a JSON object, got ${body === null ? 'null' : Array.isArray(body) ? 'an array' : typeof body}`,
    );
  }
  check(route.body, body, 'body');
  return body as Record<string, unknown>;
}

function bodyText(event: APIGatewayProxyEventV2): string | undefined {
  if (event.body === undefined || event.body === null) return undefined;
  // Request bodies are parsed only below this size; the value limit itself is checked exactly by
  // lib. JSON escaping can make a body several times the size of the value it carries.
  const limit = getStorageConfig().limits.maxValueBytes * BODY_VALUE_MULTIPLE + BODY_OVERHEAD_BYTES;
  // Base64 is 4/3 of the bytes it carries; either way the check happens before any decoding.
  const size = event.isBase64Encoded
    ? Math.floor((event.body.length * 3) / 4)
    : Buffer.byteLength(event.body);
  if (size > limit)
    throw new PayloadTooLargeError('body', `is ${size} bytes; requests are limited to ${limit} bytes`);
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

function headerValue(
  headers: Record<string, string | undefined> | undefined,
  name: string,
): string | undefined {
  for (const [key, value] of Object.entries(headers ?? {})) if (key.toLowerCase() === name) return value;
  return undefined;
}

/** Validates `value` against `schema`; one `ValidationError` naming every bad field (the first ten). */
function check(schema: TSchema, value: unknown, root: string): void {
  const problems: { field: string; message: string }[] = [];
  for (const error of Errors(schema, value)) {
    const field = fieldPath(root, error.path);
    if (problems.some((problem) => problem.field === field)) continue;
    problems.push({ field, message: describeSchemaError(error) });
    if (problems.length === 10) break;
  }
  if (problems.length === 0) return;
  const [first, ...rest] = problems;
  throw new ValidationError(
    first!.field,
    [first!.message, ...rest.map(({ field, message }) => `${field}: ${message}`)].join('; '),
  );
}

type HttpMiddleware = middy.MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>;

/**
 * One latency metric per request of function `fn`'s routes, named by the route's operation, on
 * success and on error (`httpApi` adds it; a function with its own pipeline uses it directly).
 */
export function routeMetrics(fn: FunctionName): HttpMiddleware {
  return operationMetrics(routesOf(fn));
}

function operationMetrics(own: RouteSpec[]): HttpMiddleware {
  const started = new WeakMap<object, number>();
  const record = (request: middy.Request<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>) => {
    const start = started.get(request);
    if (start === undefined) return;
    const route = findRoute(own, request.event);
    const status = (request.response as HttpResponse | undefined)?.statusCode ?? 500;
    let backend = 'unknown';
    let pools: ReturnType<Storage['pools']> = {};
    try {
      const storage = getStorage();
      backend = storage.backend;
      pools = storage.pools();
    } catch {
      // Invalid configuration: already answered 503 and logged.
    }
    recordOperation(route?.operation ?? 'unknown', backend, performance.now() - start, status);
    recordPools(pools);
  };
  return {
    name: 'operationMetrics',
    before: (request) => {
      started.set(request, performance.now());
    },
    after: record,
    onError: record,
  };
}
