/**
 * The OpenAPI 3.1 document of the HTTP API, built from the routes table (`routes.ts`): the same
 * schemas the handlers validate with. `npm run openapi` writes it to `openapi.yaml`; a test
 * fails when the file, the table and `serverless.yml` disagree.
 */
import type { TSchema } from '@sinclair/typebox';
import { ErrorBody, pathParameters, type RouteSpec, routes } from './routes.js';

type JsonSchema = Record<string, unknown>;

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'bad_request: invalid JSON, a missing or invalid field, a bad name or ttl',
  401: 'unauthorized: missing, unknown, expired or revoked token',
  403: 'forbidden: the token lacks the scope or the resource',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large: the value or message is over the configured limit',
  503: 'unavailable: the backend is down and no fallback serves',
};

const PARAMETER_DESCRIPTIONS: Record<string, string> = {
  key: 'the kv key',
  id: 'the session, message or token id',
  clusterId: 'the cluster id',
  queue: 'the queue name',
  channel: 'the channel name',
};

export function openApiDocument(version: string): JsonSchema {
  const components: Record<string, JsonSchema> = {};
  const ref = (schema: TSchema) => toJsonSchema(schema, components);
  const paths: Record<string, Record<string, JsonSchema>> = {};

  for (const route of routes as readonly RouteSpec[]) {
    const parameters: JsonSchema[] = pathParameters(route.path).map((name) => ({
      name,
      in: 'path',
      required: true,
      description: `${PARAMETER_DESCRIPTIONS[name] ?? name}: URL-encoded, 1–255 bytes of UTF-8, no control characters`,
      schema: { type: 'string', minLength: 1 },
    }));
    if (route.query) {
      const query = ref(route.query) as { properties: Record<string, JsonSchema> };
      for (const [name, schema] of Object.entries(query.properties)) {
        const { description, ...rest } = schema;
        parameters.push({
          name,
          in: 'query',
          required: false,
          ...(description ? { description } : {}),
          schema: rest,
        });
      }
    }

    const responses: Record<string, JsonSchema> = {};
    for (const [status, schema] of Object.entries(route.responses)) {
      responses[status] =
        schema === null
          ? { description: 'done, no body' }
          : { description: 'success', content: { 'application/json': { schema: ref(schema) } } };
    }
    const errors = route.scopes ? [400, 401, 403, ...(route.errors ?? []), 503] : [503];
    for (const status of [...new Set(errors)].sort()) {
      responses[String(status)] = {
        description: ERROR_DESCRIPTIONS[status] ?? 'error',
        content: { 'application/json': { schema: ref(ErrorBody) } },
      };
    }

    const operation: JsonSchema = {
      operationId: route.operation,
      summary: route.summary,
      tags: [route.fn],
      ...(route.scopes ? { description: `Scopes: ${route.scopes.join(' or ')} (or admin).` } : {}),
      ...(route.scopes ? {} : { security: [] }),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body
        ? {
            requestBody: {
              required: route.bodyRequired === true,
              content: { 'application/json': { schema: ref(route.body) } },
            },
          }
        : {}),
      responses,
    };
    paths[route.path] ??= {};
    paths[route.path]![route.method.toLowerCase()] = operation;
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Kubently Storage',
      version,
      description:
        'Key-value, sessions, queues, events and tokens for Kubently. Every route but /health needs a token ' +
        '(Authorization: Bearer, or X-Api-Key). Errors are {"error": {"code", "message"}}; a path not listed ' +
        'here answers 404 not_found, a listed path asked with another method 405 method_not_allowed with an ' +
        'Allow header (docs/errors-and-limits.md). The WebSocket ' +
        'relay (connect with ?token=, frames subscribe / unsubscribe / publish) is described in docs/api.md.',
    },
    security: [{ bearer: [] }, { apiKey: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key' },
      },
      schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => a.localeCompare(b))),
    },
  };
}

/**
 * Plain JSON Schema from a TypeBox schema (its symbol keys dropped); a schema with an `$id`
 * becomes a component, referenced by `$ref`.
 */
function toJsonSchema(schema: TSchema, components: Record<string, JsonSchema>): JsonSchema {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== 'object') return node;
    const { $id, ...rest } = node as JsonSchema;
    const plain: JsonSchema = {};
    for (const [key, value] of Object.entries(rest)) plain[key] = walk(value);
    if (typeof $id === 'string') {
      components[$id] ??= plain;
      return { $ref: `#/components/schemas/${$id}` };
    }
    return plain;
  };
  return walk(schema) as JsonSchema;
}
