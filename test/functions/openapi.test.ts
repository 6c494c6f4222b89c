/**
 * One set of routes: the routes table the handlers validate with, the generated openapi.yaml,
 * and the httpApi events of serverless.yml must agree route for route; openapi.yaml passes
 * Redocly's recommended rules (redocly.yaml).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { routeKey, routes } from '../../functions/runtime/routes.js';
import { renderOpenApi } from '../../tools/openapi.js';

const read = (path: string) => readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8');

interface ServerlessFunction {
  handler: string;
  /** `'*'`: the HTTP API's `$default` route (the catch-all). */
  events?: { httpApi?: { method: string; path: string } | '*' }[];
}

const serverless = parse(read('serverless.yml')) as { functions: Record<string, ServerlessFunction> };
interface Operation {
  operationId: string;
  parameters?: ({ name: string; in: string } | { $ref: string })[];
  responses: Record<string, unknown>;
}
const openapi = parse(read('openapi.yaml')) as {
  paths: Record<string, Record<string, Operation>>;
  components: { parameters: Record<string, { name: string; in: string }> };
};
const operations = Object.values(openapi.paths).flatMap((byMethod) => Object.values(byMethod));

const serverlessRoutes = Object.entries(serverless.functions).flatMap(([name, fn]) =>
  (fn.events ?? []).flatMap((event) =>
    event.httpApi && event.httpApi !== '*'
      ? [{ key: `${event.httpApi.method.toUpperCase()} ${event.httpApi.path}`, name, handler: fn.handler }]
      : [],
  ),
);
const openapiRoutes = Object.entries(openapi.paths).flatMap(([path, operations]) =>
  Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
);
const tableRoutes = routes.map(routeKey);

describe('routes', () => {
  it('openapi.yaml is what `npm run openapi` generates from the routes table', () => {
    expect(read('openapi.yaml')).toBe(renderOpenApi());
  });

  it('serverless.yml serves exactly the routes of the table, each by its function', () => {
    expect(serverlessRoutes.map((route) => route.key).sort()).toEqual([...tableRoutes].sort());
    for (const route of routes) {
      const served = serverlessRoutes.find((candidate) => candidate.key === routeKey(route));
      expect(served, routeKey(route)).toMatchObject({
        name: route.fn,
        handler: `functions/${route.fn}.handler`,
      });
    }
  });

  it('one function serves every other request (the $default route): functions/fallback', () => {
    const catchAll = Object.entries(serverless.functions).filter(([, fn]) =>
      (fn.events ?? []).some((event) => event.httpApi === '*'),
    );
    expect(catchAll.map(([name, fn]) => [name, fn.handler])).toEqual([
      ['fallback', 'functions/fallback.handler'],
    ]);
  });

  it('openapi.yaml documents exactly the routes of the table', () => {
    expect(openapiRoutes.sort()).toEqual([...tableRoutes].sort());
  });

  it('no route is listed twice and every operation id is unique', () => {
    expect(new Set(tableRoutes).size).toBe(tableRoutes.length);
    expect(new Set(routes.map((route) => route.operation)).size).toBe(routes.length);
  });

  it('the docs/api.md contract routes are all there', () => {
    // Spelled out once more by hand so a route dropped from the table (and thus from every
    // generated artefact at once) still fails here.
    expect([...tableRoutes].sort()).toEqual(
      [
        'GET /health',
        'PUT /kv/{key}',
        'GET /kv/{key}',
        'DELETE /kv/{key}',
        'POST /kv/{key}/expire',
        'POST /kv/{key}/incr',
        'POST /sessions',
        'GET /sessions/{id}',
        'POST /sessions/{id}/keepalive',
        'DELETE /sessions/{id}',
        'GET /sessions',
        'GET /clusters/active',
        'GET /clusters/{clusterId}/active',
        'POST /queues/{queue}/messages',
        'POST /queues/{queue}/receive',
        'POST /queues/{queue}/messages/{id}/ack',
        'POST /queues/{queue}/messages/{id}/nack',
        'GET /queues/{queue}',
        'POST /channels/{channel}/messages',
        'GET /channels/{channel}/messages',
        'POST /tokens',
        'GET /tokens',
        'DELETE /tokens/{id}',
      ].sort(),
    );
  });
});

describe('openapi.yaml', () => {
  it("passes Redocly's recommended rules with no error and no warning (redocly.yaml)", () => {
    const cli = createRequire(import.meta.url).resolve('@redocly/cli/bin/cli.js');
    const run = spawnSync(process.execPath, [cli, 'lint', 'openapi.yaml', '--format=json'], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      encoding: 'utf8',
    });
    expect(run.stdout.trim(), run.stderr).toMatch(/^\{/);
    const report = JSON.parse(run.stdout) as {
      totals: { errors: number; warnings: number };
      problems: { ruleId: string; message: string }[];
    };
    expect(report.problems.map(({ ruleId, message }) => `${ruleId}: ${message}`)).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  });

  it("documents API Gateway's 429 and the 500 on every operation", () => {
    for (const operation of operations) {
      expect(Object.keys(operation.responses), operation.operationId).toEqual(
        expect.arrayContaining(['429', '500']),
      );
    }
  });

  it('documents the X-Correlation-Id header on the routes whose audit entry records it', () => {
    const headersOf = (operation: Operation) =>
      (operation.parameters ?? [])
        .map((parameter) =>
          '$ref' in parameter
            ? openapi.components.parameters[parameter.$ref.replace('#/components/parameters/', '')]
            : parameter,
        )
        .filter((parameter) => parameter?.in === 'header')
        .map((parameter) => parameter!.name);
    const withHeader = operations
      .filter((operation) => headersOf(operation).includes('X-Correlation-Id'))
      .map((operation) => operation.operationId);
    expect(withHeader.sort()).toEqual(['tokens.issue', 'tokens.revoke']);
  });

  it('spells a set of constants as an enum, never as anyOf of const', () => {
    const text = read('openapi.yaml');
    expect(text).not.toMatch(/\bconst:/);
    expect(parse(text).components.schemas.Scope).toMatchObject({ type: 'string', enum: expect.any(Array) });
  });
});
