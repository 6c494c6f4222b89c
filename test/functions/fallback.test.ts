/**
 * The `$default` route (functions/fallback.ts): unknown paths get docs/api.md's 404 body, known paths
 * asked with another method a 405 `method_not_allowed` with an `Allow` header. End to end over
 * serverless-offline in test/e2e/hostile (the "routing" group).
 */
import { describe, expect, it } from 'vitest';
import { handler } from '../../functions/fallback.js';
import { httpEvent, lambdaContext } from '../support/lambda.js';

process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';

async function ask(method: string, rawPath: string) {
  const event = httpEvent(method, rawPath, { headers: { authorization: 'Bearer kbs_not-needed' } });
  event.routeKey = '$default';
  const response = await handler(event, lambdaContext('fallback'));
  return {
    status: response.statusCode,
    headers: response.headers ?? {},
    body: JSON.parse(String(response.body)),
  };
}

describe('fallback ($default route)', () => {
  it.each([
    ['GET', '/'],
    ['GET', '/nope'],
    ['GET', '/health/'],
    ['GET', '/kv'],
    ['GET', '/kv/'],
    ['GET', '/kv/a/b'],
    ['POST', '/kv//incr'],
    ['GET', '/KV/a'],
    ['DELETE', '/tokens/a/b'],
    ['GET', '/clusters/active/extra'],
  ])('%s %s → 404 not_found', async (method, path) => {
    const response = await ask(method, path);
    expect(response.status).toBe(404);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.body).toStrictEqual({
      error: {
        code: 'not_found',
        message: `no route ${method} ${JSON.stringify(path)}; the routes are listed in openapi.yaml`,
      },
    });
  });

  it.each([
    ['PATCH', '/kv/a', 'PUT, GET, DELETE', '/kv/{key}'],
    ['POST', '/kv/a', 'PUT, GET, DELETE', '/kv/{key}'],
    ['GET', '/kv/a/expire', 'POST', '/kv/{key}/expire'],
    ['PUT', '/sessions', 'POST, GET', '/sessions'],
    ['DELETE', '/health', 'GET', '/health'],
    ['HEAD', '/health', 'GET', '/health'],
    ['OPTIONS', '/tokens', 'POST, GET', '/tokens'],
    ['POST', '/clusters/active', 'GET', '/clusters/active'],
    ['DELETE', '/queues/q', 'GET', '/queues/{queue}'],
  ])('%s %s → 405 method_not_allowed, Allow: %s', async (method, path, allow, route) => {
    const response = await ask(method, path);
    expect(response.status).toBe(405);
    expect(response.headers.allow).toBe(allow);
    expect(response.body).toStrictEqual({
      error: {
        code: 'method_not_allowed',
        message: `${method} is not allowed on ${route}; allowed: ${allow}`,
      },
    });
  });

  it('a long path is cut in the message', async () => {
    const response = await ask('GET', `/${'x'.repeat(5000)}`);
    expect(response.status).toBe(404);
    expect(response.body.error.message.length).toBeLessThan(300);
  });
});
