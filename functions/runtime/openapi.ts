/**
 * The OpenAPI 3.1 document of the HTTP API, built from the routes table (`routes.ts`): the same
 * schemas the handlers validate with. `npm run openapi` writes it to `openapi.yaml`; a test
 * fails when the file, the table and `serverless.yml` disagree.
 */
import type { TSchema } from '@sinclair/typebox';
import { MAX_NAME_BYTES } from '../../lib/limits.js';
import { ErrorBody, GatewayErrorBody, pathParameters, type RouteSpec, routes } from './routes.js';

type JsonSchema = Record<string, unknown>;

/** What the document says about the package: package.json's `version` and `license` (SPDX). */
export interface PackageInfo {
  version: string;
  license: string;
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'bad_request: invalid JSON, a missing or invalid field, a bad name or ttl',
  401: 'unauthorized: missing, unknown, expired or revoked token',
  403: 'forbidden: the token lacks the scope or the resource',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large: the value or message is over the configured limit',
  429: "API Gateway's own answer (GatewayError): the stage's throttle refused the request; retry later",
  500:
    'internal: a fault of the service, the message carries an id that is logged with the error; or ' +
    "API Gateway's own answer (GatewayError) when the function itself failed (crashed, timed out or could not be invoked)",
  503: 'unavailable: the backend is down and no fallback serves',
};

/** Statuses API Gateway may answer itself, with its own body. */
const GATEWAY_STATUSES = new Set([429, 500]);
/** Statuses only API Gateway answers: the functions never do. */
const GATEWAY_ONLY_STATUSES = new Set([429]);

const CORRELATION_ID: JsonSchema = {
  name: 'X-Correlation-Id',
  in: 'header',
  required: false,
  description: `the correlation id the audit entry records (a name: 1–${MAX_NAME_BYTES} bytes of UTF-8, no control characters); absent or invalid: API Gateway's request id`,
  schema: { type: 'string', minLength: 1 },
};

const TAG_DESCRIPTIONS: Record<RouteSpec['fn'], string> = {
  health: 'whether the backend serves (no token)',
  kv: 'key-value pairs with optional expiry',
  sessions: 'troubleshooting sessions and the clusters they keep active',
  queues: 'work queues with leases, acknowledgements and a dead-letter count',
  publish: 'events: publish to a channel (relayed to WebSocket subscribers) and read its history',
  tokens: 'API tokens (admin)',
};

const PARAMETER_DESCRIPTIONS: Record<string, string> = {
  key: 'the kv key',
  id: 'the session, message or token id',
  clusterId: 'the cluster id',
  queue: 'the queue name',
  channel: 'the channel name',
};

export function openApiDocument({ version, license }: PackageInfo): JsonSchema {
  const components: Record<string, JsonSchema> = {};
  const ref = (schema: TSchema) => toJsonSchema(schema, components);
  const paths: Record<string, Record<string, JsonSchema>> = {};

  for (const route of routes as readonly RouteSpec[]) {
    const parameters: JsonSchema[] = pathParameters(route.path).map((name) => ({
      name,
      in: 'path',
      required: true,
      description: `${PARAMETER_DESCRIPTIONS[name] ?? name}: URL-encoded, 1–${MAX_NAME_BYTES} bytes of UTF-8, no control characters`,
      schema: { type: 'string', minLength: 1 },
    }));
    if (route.audited) parameters.push({ $ref: '#/components/parameters/CorrelationId' });
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
    const errors = route.scopes ? [400, 401, 403, ...(route.errors ?? []), 429, 500, 503] : [429, 500, 503];
    for (const status of [...new Set(errors)].sort()) {
      const schema = GATEWAY_ONLY_STATUSES.has(status)
        ? ref(GatewayErrorBody)
        : GATEWAY_STATUSES.has(status)
          ? { anyOf: [ref(ErrorBody), ref(GatewayErrorBody)] }
          : ref(ErrorBody);
      responses[String(status)] = {
        description: ERROR_DESCRIPTIONS[status] ?? 'error',
        content: { 'application/json': { schema } },
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
      license: { name: license, identifier: license },
    },
    servers: [
      {
        url: 'https://{apiId}.execute-api.{region}.amazonaws.com',
        description:
          'a deployed stage: its HTTP API endpoint (`serverless info` prints it), or the custom domain `domain.http` ' +
          'names; `npm start` serves the same API on http://localhost:3000 (docs/local-development.md)',
        variables: {
          apiId: { default: 'abcdef1234', description: "the HTTP API's id" },
          region: { default: 'us-east-1', description: 'the AWS region of the stage' },
        },
      },
    ],
    tags: [...new Set((routes as readonly RouteSpec[]).map((route) => route.fn))].map((name) => ({
      name,
      description: TAG_DESCRIPTIONS[name],
    })),
    security: [{ bearer: [] }, { apiKey: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key' },
      },
      parameters: { CorrelationId: CORRELATION_ID },
      schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => a.localeCompare(b))),
    },
  };
}

/**
 * Plain JSON Schema from a TypeBox schema (its symbol keys dropped; a union of literals as an
 * `enum`); a schema with an `$id` becomes a component, referenced by `$ref`.
 */
function toJsonSchema(schema: TSchema, components: Record<string, JsonSchema>): JsonSchema {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== 'object') return node;
    const { $id, ...rest } = node as JsonSchema;
    const plain: JsonSchema = {};
    for (const [key, value] of Object.entries(rest)) plain[key] = walk(value);
    const schema = asEnum(plain);
    if (typeof $id === 'string') {
      components[$id] ??= schema;
      return { $ref: `#/components/schemas/${$id}` };
    }
    return schema;
  };
  return walk(schema) as JsonSchema;
}

/** TypeBox's union of literals (`anyOf` of `{const, type}` of one type) as `{type, enum}`. */
function asEnum(schema: JsonSchema): JsonSchema {
  const { anyOf, ...rest } = schema;
  if (!Array.isArray(anyOf) || anyOf.length === 0) return schema;
  const members = anyOf as JsonSchema[];
  const type = members[0]!.type;
  const isLiteral = (member: JsonSchema) =>
    'const' in member && member.type === type && Object.keys(member).length === 2;
  if (!members.every(isLiteral)) return schema;
  return { ...rest, type, enum: members.map((member) => member.const) };
}
