/**
 * Every HTTP route of docs/api.md, once, grouped by the function serving it: method, path, the
 * scope it needs, and its request and response schemas. Handlers validate requests with these
 * schemas; routes.ts assembles the whole table.
 */
import type { Static, TSchema } from '@sinclair/typebox';
// A namespace import esbuild can tree-shake: TypeBox's `Type` object holds every builder,
// ~45 KB more in each bundled function.
import * as T from '@sinclair/typebox';
import {
  DEFAULT_LIST_LIMIT,
  DEFAULT_RECEIVE_MAX,
  DEFAULT_VISIBILITY_SECONDS,
  EVENT_ID_DIGITS,
  MAX_DELAY_SECONDS,
  MAX_GLOB_STARS,
  MAX_GLOBS_PER_TOKEN,
  MAX_LIST_LIMIT,
  MAX_NAME_BYTES,
  MAX_OPAQUE_STRING_CHARS,
  MAX_RECEIVE_MAX,
  MAX_VISIBILITY_SECONDS,
  MAX_WAIT_SECONDS,
} from '../../lib/limits.js';
import { SCOPES, type Scope } from '../../lib/storage/types.js';
import { EVENT_ID_PATTERN } from '../../lib/storage/validate.js';

const Strict = { additionalProperties: false } as const;

/** Any JSON value (object, array, string, number, boolean or null). */
const AnyJson = T.Unknown({ description: 'any JSON value' });
const Seconds = (description: string) => T.Number({ exclusiveMinimum: 0, description });
const NonNegativeSeconds = (description: string) => T.Number({ minimum: 0, description });
const Time = T.String({ format: 'date-time', description: 'ISO-8601 UTC' });
const NullableTime = T.Union([Time, T.Null()]);
const Name = (description: string) =>
  T.String({
    minLength: 1,
    maxLength: MAX_NAME_BYTES,
    description: `${description}: 1–${MAX_NAME_BYTES} bytes of UTF-8, no control characters`,
  });

/** Digits of a `limit` query parameter: enough for `MAX_LIST_LIMIT`, the handler checks the value. */
const LIMIT_PATTERN = `^[0-9]{1,${String(MAX_LIST_LIMIT).length}}$`;
/** A receipt or a cursor: a string the service answered earlier. */
const OPAQUE = { minLength: 1, maxLength: MAX_OPAQUE_STRING_CHARS } as const;

/** The query of a paged route (keyset pages; the response carries `cursor` while more follow). */
export const PageQuery = T.Object(
  {
    limit: T.Optional(
      T.String({
        pattern: LIMIT_PATTERN,
        description: `an integer 1–${MAX_LIST_LIMIT}, default ${DEFAULT_LIST_LIMIT}`,
      }),
    ),
    cursor: T.Optional(T.String({ ...OPAQUE, description: 'the cursor the previous page answered' })),
  },
  Strict,
);
export type PageQuery = Static<typeof PageQuery>;
const Cursor = T.Optional(
  T.String({ description: 'present when more items follow: pass it as the next request’s cursor' }),
);

// ---------------------------------------------------------------------------------------
// response bodies

export const SessionBody = T.Object(
  {
    sessionId: T.String(),
    clusterId: T.String(),
    userId: T.Union([T.String(), T.Null()]),
    correlationId: T.Union([T.String(), T.Null()]),
    serviceIdentity: T.Union([T.String(), T.Null()]),
    data: T.Record(T.String(), T.Unknown()),
    createdAt: Time,
    lastActivity: Time,
    expiresAt: Time,
  },
  { $id: 'Session' },
);

const ScopeSchema = T.Union(
  SCOPES.map((scope) => T.Literal(scope)),
  { $id: 'Scope' },
);

const TokenInfoBody = T.Object(
  {
    id: T.String(),
    identity: T.String(),
    scopes: T.Array(ScopeSchema),
    resources: T.Array(T.String()),
    createdAt: Time,
    expiresAt: NullableTime,
  },
  { $id: 'TokenInfo' },
);

// ---------------------------------------------------------------------------------------
// the table

export type FunctionName = 'health' | 'kv' | 'sessions' | 'queues' | 'publish' | 'tokens';

export interface RouteSpec {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** API Gateway's route path, `{name}` for a path parameter (one URL-encoded segment). */
  path: string;
  fn: FunctionName;
  /** Operation id (OpenAPI) and metric name, e.g. `kv.set`. */
  operation: string;
  summary: string;
  /** Scopes any one of which allows the route (`admin` always does); undefined: no token needed. */
  scopes?: readonly Scope[];
  /** Request body; `bodyRequired` false: an absent body means `{}`. */
  body?: TSchema;
  bodyRequired?: boolean;
  /** Query string parameters (strings). */
  query?: TSchema;
  /** Status → response body schema (`null`: no body). Error statuses are added by the generator. */
  responses: Record<number, TSchema | null>;
  /** Error statuses this route answers besides 400/401/403/429/500/503. */
  errors?: number[];
  /** Written to the audit log; the `X-Correlation-Id` request header names the entry's correlation id. */
  audited?: boolean;
}

/**
 * Each function's routes, built when asked: a function builds only the schemas of the routes it
 * serves (`routesOf`), the OpenAPI generator and the fallback function the whole table (routes.ts).
 */
export const routeGroups = {
  health: () =>
    [
      {
        method: 'GET',
        path: '/health',
        fn: 'health',
        operation: 'health',
        summary: 'Backend health (no token)',
        responses: {
          200: T.Object({
            status: T.Union([T.Literal('ok'), T.Literal('degraded'), T.Literal('down')]),
            backend: T.String(),
            checks: T.Record(T.String(), T.Object({ ok: T.Boolean(), latencyMs: T.Number() })),
          }),
        },
      },
    ] as const satisfies readonly RouteSpec[],
  kv: () =>
    [
      {
        method: 'PUT',
        path: '/kv/{key}',
        fn: 'kv',
        operation: 'kv.set',
        summary: 'Write a value (nx: only if missing, xx: only if present)',
        scopes: ['kv:write'],
        body: T.Object(
          {
            value: AnyJson,
            ttl: T.Optional(Seconds('seconds until the key expires; absent: never')),
            nx: T.Optional(T.Boolean()),
            xx: T.Optional(T.Boolean()),
          },
          Strict,
        ),
        bodyRequired: true,
        responses: { 200: T.Object({ key: T.String(), expiresAt: NullableTime }) },
        errors: [409, 413],
      },
      {
        method: 'GET',
        path: '/kv/{key}',
        fn: 'kv',
        operation: 'kv.get',
        summary: 'Read a value',
        scopes: ['kv:read'],
        responses: { 200: T.Object({ key: T.String(), value: AnyJson, expiresAt: NullableTime }) },
        errors: [404],
      },
      {
        method: 'DELETE',
        path: '/kv/{key}',
        fn: 'kv',
        operation: 'kv.delete',
        summary: 'Delete a key',
        scopes: ['kv:write'],
        responses: { 204: null },
        errors: [404],
      },
      {
        method: 'POST',
        path: '/kv/{key}/expire',
        fn: 'kv',
        operation: 'kv.expire',
        summary: "Set a key's TTL (null: keep it forever)",
        scopes: ['kv:write'],
        body: T.Object({ ttl: T.Union([Seconds('seconds from now'), T.Null()]) }, Strict),
        bodyRequired: true,
        responses: { 200: T.Object({ key: T.String(), expiresAt: NullableTime }) },
        errors: [404],
      },
      {
        method: 'POST',
        path: '/kv/{key}/incr',
        fn: 'kv',
        operation: 'kv.incr',
        summary: 'Add to an integer value (a missing key starts at 0)',
        scopes: ['kv:write'],
        body: T.Object({ by: T.Optional(T.Integer({ description: 'default 1; a safe integer' })) }, Strict),
        responses: { 200: T.Object({ key: T.String(), value: T.Integer() }) },
        errors: [409],
      },
    ] as const satisfies readonly RouteSpec[],
  sessions: () =>
    [
      {
        method: 'POST',
        path: '/sessions',
        fn: 'sessions',
        operation: 'sessions.create',
        summary: 'Create a session',
        scopes: ['sessions:write'],
        body: T.Object(
          {
            clusterId: Name('cluster id'),
            userId: T.Optional(Name('user id')),
            correlationId: T.Optional(Name('correlation id')),
            serviceIdentity: T.Optional(Name('service identity (a non-admin token: its own identity)')),
            data: T.Optional(T.Record(T.String(), T.Unknown())),
            ttl: T.Optional(Seconds('seconds the session lives without a keep-alive (default 300)')),
          },
          Strict,
        ),
        bodyRequired: true,
        responses: { 201: SessionBody },
        errors: [413],
      },
      {
        method: 'GET',
        path: '/sessions',
        fn: 'sessions',
        operation: 'sessions.find',
        summary: 'Live sessions of a cluster (clusterId) or sharing a correlation id (correlationId)',
        scopes: ['sessions:read'],
        query: T.Object(
          { clusterId: T.Optional(Name('cluster id')), correlationId: T.Optional(Name('correlation id')) },
          Strict,
        ),
        responses: { 200: T.Object({ sessions: T.Array(SessionBody) }) },
      },
      {
        method: 'GET',
        path: '/sessions/{id}',
        fn: 'sessions',
        operation: 'sessions.get',
        summary: 'Read a live session',
        scopes: ['sessions:read'],
        responses: { 200: SessionBody },
        errors: [404],
      },
      {
        method: 'POST',
        path: '/sessions/{id}/keepalive',
        fn: 'sessions',
        operation: 'sessions.keepAlive',
        summary: 'Extend a live session (default: the ttl it was created with)',
        scopes: ['sessions:write'],
        body: T.Object({ ttl: T.Optional(Seconds('seconds from now')) }, Strict),
        responses: { 200: SessionBody },
        errors: [404],
      },
      {
        method: 'DELETE',
        path: '/sessions/{id}',
        fn: 'sessions',
        operation: 'sessions.end',
        summary: 'End a session',
        scopes: ['sessions:write'],
        responses: { 204: null },
        errors: [404],
      },
      {
        method: 'GET',
        path: '/clusters/active',
        fn: 'sessions',
        operation: 'sessions.activeClusters',
        summary: 'Clusters with a live session within the token’s resources, one page at a time',
        scopes: ['sessions:read'],
        query: PageQuery,
        responses: { 200: T.Object({ clusters: T.Array(T.String()), cursor: Cursor }) },
      },
      {
        method: 'GET',
        path: '/clusters/{clusterId}/active',
        fn: 'sessions',
        operation: 'sessions.isClusterActive',
        summary: 'Whether a cluster has a live session',
        scopes: ['sessions:read'],
        responses: { 200: T.Object({ clusterId: T.String(), active: T.Boolean() }) },
      },
    ] as const satisfies readonly RouteSpec[],
  queues: () =>
    [
      {
        method: 'POST',
        path: '/queues/{queue}/messages',
        fn: 'queues',
        operation: 'queues.send',
        summary: 'Enqueue a message (201; 200 with the first id for a repeated dedupId)',
        scopes: ['queues:send'],
        body: T.Object(
          {
            payload: AnyJson,
            delay: T.Optional(
              NonNegativeSeconds(
                `seconds before it becomes visible (at most ${MAX_DELAY_SECONDS / 86_400} days)`,
              ),
            ),
            dedupId: T.Optional(Name('deduplication id')),
          },
          Strict,
        ),
        bodyRequired: true,
        responses: { 201: T.Object({ id: T.String() }), 200: T.Object({ id: T.String() }) },
        errors: [413],
      },
      {
        method: 'POST',
        path: '/queues/{queue}/receive',
        fn: 'queues',
        operation: 'queues.receive',
        summary: 'Lease up to max messages (long-polls up to wait seconds)',
        scopes: ['queues:receive'],
        body: T.Object(
          {
            max: T.Optional(
              T.Integer({
                minimum: 1,
                maximum: MAX_RECEIVE_MAX,
                description: `default ${DEFAULT_RECEIVE_MAX}`,
              }),
            ),
            visibilityTimeout: T.Optional(
              T.Number({
                exclusiveMinimum: 0,
                maximum: MAX_VISIBILITY_SECONDS,
                description: `seconds, default ${DEFAULT_VISIBILITY_SECONDS}`,
              }),
            ),
            wait: T.Optional(
              T.Number({ minimum: 0, maximum: MAX_WAIT_SECONDS, description: 'seconds, default 0' }),
            ),
          },
          Strict,
        ),
        responses: {
          200: T.Object({
            messages: T.Array(
              T.Object({
                id: T.String(),
                receipt: T.String(),
                payload: AnyJson,
                attempts: T.Integer(),
                enqueuedAt: Time,
              }),
            ),
          }),
        },
      },
      {
        method: 'POST',
        path: '/queues/{queue}/messages/{id}/ack',
        fn: 'queues',
        operation: 'queues.ack',
        summary: 'Delete a leased message',
        scopes: ['queues:receive'],
        body: T.Object({ receipt: T.String(OPAQUE) }, Strict),
        bodyRequired: true,
        responses: { 204: null },
        errors: [404, 409],
      },
      {
        method: 'POST',
        path: '/queues/{queue}/messages/{id}/nack',
        fn: 'queues',
        operation: 'queues.nack',
        summary: 'Give a leased message back (visible again after delay)',
        scopes: ['queues:receive'],
        body: T.Object(
          {
            receipt: T.String(OPAQUE),
            delay: T.Optional(NonNegativeSeconds('seconds')),
          },
          Strict,
        ),
        bodyRequired: true,
        responses: { 204: null },
        errors: [404, 409],
      },
      {
        method: 'GET',
        path: '/queues/{queue}',
        fn: 'queues',
        operation: 'queues.stats',
        summary: 'Queue depth, in-flight and dead-letter counts',
        scopes: ['queues:send', 'queues:receive'],
        responses: {
          200: T.Object({ queue: T.String(), depth: T.Integer(), inFlight: T.Integer(), dead: T.Integer() }),
        },
      },
    ] as const satisfies readonly RouteSpec[],
  publish: () =>
    [
      {
        method: 'POST',
        path: '/channels/{channel}/messages',
        fn: 'publish',
        operation: 'events.publish',
        summary: 'Publish an event (stored, then relayed to WebSocket subscribers)',
        scopes: ['events:publish'],
        body: T.Object({ message: AnyJson }, Strict),
        bodyRequired: true,
        responses: { 202: T.Object({ id: T.String(), publishedAt: Time }) },
        errors: [413],
      },
      {
        method: 'GET',
        path: '/channels/{channel}/messages',
        fn: 'publish',
        operation: 'events.history',
        summary: 'Retained events after an id, oldest first',
        scopes: ['events:subscribe'],
        query: T.Object(
          {
            after: T.Optional(
              T.String({
                pattern: EVENT_ID_PATTERN,
                description: `an event id (up to ${EVENT_ID_DIGITS} digits)`,
              }),
            ),
            limit: T.Optional(
              T.String({
                pattern: LIMIT_PATTERN,
                description: `an integer from 1 to ${MAX_LIST_LIMIT} (default ${DEFAULT_LIST_LIMIT})`,
              }),
            ),
          },
          Strict,
        ),
        responses: {
          200: T.Object({
            messages: T.Array(
              T.Object({ id: T.String(), channel: T.String(), message: AnyJson, publishedAt: Time }),
            ),
          }),
        },
      },
    ] as const satisfies readonly RouteSpec[],
  tokens: () =>
    [
      {
        method: 'POST',
        path: '/tokens',
        fn: 'tokens',
        operation: 'tokens.issue',
        summary: 'Issue a token (the only time its secret is shown)',
        scopes: ['admin'],
        audited: true,
        body: T.Object(
          {
            identity: Name('service name'),
            scopes: T.Array(ScopeSchema, { minItems: 1, maxItems: SCOPES.length }),
            resources: T.Optional(
              T.Array(
                T.String({
                  minLength: 1,
                  maxLength: MAX_NAME_BYTES,
                  description: `a glob (\`*\` matches any run of characters): 1–${MAX_NAME_BYTES} bytes of UTF-8, at most ${MAX_GLOB_STARS} \`*\``,
                }),
                { minItems: 1, maxItems: MAX_GLOBS_PER_TOKEN, description: 'default ["*"]' },
              ),
            ),
            ttl: T.Optional(Seconds('seconds until it expires; absent: until revoked')),
          },
          Strict,
        ),
        bodyRequired: true,
        responses: {
          201: T.Object({
            id: T.String(),
            token: T.String(),
            identity: T.String(),
            scopes: T.Array(ScopeSchema),
            resources: T.Array(T.String()),
            expiresAt: NullableTime,
          }),
        },
      },
      {
        method: 'GET',
        path: '/tokens',
        fn: 'tokens',
        operation: 'tokens.list',
        summary:
          'Live tokens within the token’s resources, oldest first, one page at a time (never their secrets)',
        scopes: ['admin'],
        query: PageQuery,
        responses: { 200: T.Object({ tokens: T.Array(TokenInfoBody), cursor: Cursor }) },
      },
      {
        method: 'DELETE',
        path: '/tokens/{id}',
        fn: 'tokens',
        operation: 'tokens.revoke',
        summary: 'Revoke a token at once',
        scopes: ['admin'],
        audited: true,
        responses: { 204: null },
        errors: [404],
      },
    ] as const satisfies readonly RouteSpec[],
} satisfies Record<FunctionName, () => readonly RouteSpec[]>;

export type Route = ReturnType<(typeof routeGroups)[FunctionName]>[number];

/** The routes function `fn` serves, built anew. */
export const routesOf = (fn: FunctionName): RouteSpec[] => [...routeGroups[fn]()];
export type RouteKey = `${Route['method']} ${Route['path']}`;

export const routeKey = (route: Pick<RouteSpec, 'method' | 'path'>) => `${route.method} ${route.path}`;

/** Path parameter names of a route path, in order. */
export function pathParameters(path: string): string[] {
  return [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]!);
}
