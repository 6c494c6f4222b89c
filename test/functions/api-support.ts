/**
 * Invoking the HTTP functions in-process with API Gateway v2 events, on a storage the test
 * built (a real backend from test/support/backends.ts, or memory for unit checks).
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  type FunctionName,
  pathParameters,
  type RouteSpec,
  routeFor,
} from '../../functions/runtime/routes.js';
import { useStorage } from '../../functions/runtime/storage.js';
import type { StorageConfig } from '../../lib/config/index.js';
import { configFromEnv } from '../../lib/config/index.js';
import type { Storage } from '../../lib/storage/types.js';
import {
  type Backend,
  installHint,
  memoryBackend,
  postgresBackend,
  redisBackend,
} from '../support/backends.js';
import { httpEvent, lambdaContext } from '../support/lambda.js';

process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';

type Handler = (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>;

const modules: Record<FunctionName, () => Promise<{ handler: Handler }>> = {
  health: () => import('../../functions/health.js') as Promise<{ handler: Handler }>,
  kv: () => import('../../functions/kv.js') as Promise<{ handler: Handler }>,
  sessions: () => import('../../functions/sessions.js') as Promise<{ handler: Handler }>,
  queues: () => import('../../functions/queues.js') as Promise<{ handler: Handler }>,
  publish: () => import('../../functions/publish.js') as Promise<{ handler: Handler }>,
  tokens: () => import('../../functions/tokens.js') as Promise<{ handler: Handler }>,
};

export interface ApiResponse {
  status: number;
  headers: Record<string, string | number | boolean>;
  /** The parsed JSON body; `undefined` for an empty body. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever shape the route answers.
  json: any;
  raw: string | undefined;
}

export interface CallOptions {
  /** Path parameters, decoded (as API Gateway hands them over). */
  params?: Record<string, string>;
  query?: Record<string, string>;
  /** A value to send as JSON, or a string sent as it is (malformed JSON, …). */
  body?: unknown;
  headers?: Record<string, string>;
  /** Shorthand for `Authorization: Bearer <token>`. */
  token?: string;
  /** Changes the built event before it is sent (raw paths, base64 bodies, missing parameters, …). */
  alter?: (event: APIGatewayProxyEventV2) => void;
}

/** Serves the functions from `storage` (the caller closes it). */
export function serveFrom(storage: Storage, config?: StorageConfig): void {
  useStorage(storage, config);
}

/**
 * Calls the function serving `routeKey` (`PUT /kv/{key}`) as API Gateway would: route key,
 * path parameters, raw path with each parameter URL-encoded, headers, body.
 */
export async function call(routeKey: string, options: CallOptions = {}): Promise<ApiResponse> {
  const route: RouteSpec | undefined = routeFor(routeKey);
  if (!route) throw new Error(`no route ${routeKey}`);
  const params = options.params ?? {};
  for (const name of pathParameters(route.path)) {
    if (params[name] === undefined) throw new Error(`${routeKey}: path parameter ${name} missing`);
  }
  const rawPath = route.path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(params[name]!));
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const event = httpEvent(route.method, rawPath, {
    headers,
    query: options.query,
    pathParameters: Object.keys(params).length > 0 ? params : undefined,
    body: options.body,
  });
  event.routeKey = routeKey;
  options.alter?.(event);
  const { handler } = await modules[route.fn]();
  const response = await handler(event, lambdaContext(route.fn));
  const raw = typeof response.body === 'string' ? response.body : undefined;
  return {
    status: response.statusCode ?? 200,
    headers: (response.headers ?? {}) as ApiResponse['headers'],
    json: raw ? JSON.parse(raw) : undefined,
    raw,
  };
}

/**
 * Registers `body` once per backend — by default memory, and real Redis and PostgreSQL (`pg`) —
 * with a fresh storage the functions are served from, configured from the environment the test
 * set (FANOUT_THRESHOLD, …). An unreachable server fails the run under CI and is skipped loudly
 * elsewhere, like the conformance suite.
 */
export async function describeOnBackends(
  title: string,
  body: (context: { backend: Backend; storage: () => Storage }) => void,
  backends: Backend[] = [memoryBackend, ...realBackends()],
): Promise<void> {
  for (const backend of backends) {
    const unavailable = await backend.available();
    const name = `${title} [${backend.name}]`;
    if (unavailable !== undefined && process.env.CI) {
      describe(name, () => {
        it(`${backend.name} is reachable (required under CI)`, () => {
          throw new Error(`${backend.name} is unavailable under CI: ${unavailable}`);
        });
      });
      continue;
    }
    const run = () => {
      let storage: Storage | undefined;
      beforeAll(() => {
        storage = backend.create();
        serveFrom(storage, configFromEnv());
      });
      afterAll(async () => {
        try {
          await storage?.close();
        } finally {
          await backend.cleanup();
        }
      });
      body({
        backend,
        storage: () => {
          if (!storage) throw new Error('storage() used outside a test');
          return storage;
        },
      });
    };
    if (unavailable === undefined) describe(name, run);
    else {
      const reason = `${unavailable} (${installHint(backend)})`;
      console.warn(`\n⚠ ${name} SKIPPED: ${reason}\n`);
      describe.skip(`${name} — SKIPPED: ${reason}`, run);
    }
  }
}

const realBackends = () => [redisBackend(), postgresBackend({ name: 'postgresql-pg', driver: 'pg' })];

/** `describeOnBackends` on real Redis and PostgreSQL only. */
export function describeOnRealBackends(
  title: string,
  body: (context: { backend: Backend; storage: () => Storage }) => void,
): Promise<void> {
  return describeOnBackends(title, body, realBackends());
}
