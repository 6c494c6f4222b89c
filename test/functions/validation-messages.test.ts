/**
 * What a refused request says: every validation message names the field and what it takes, in
 * plain words — never a schema library's vocabulary ("union value", "Expected number" for a
 * number too large to be finite) nor "got a undefined". Exact messages for the cases callers
 * meet most, then a sweep of every body field of every route with values of the wrong kind.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { type RouteSpec, routes } from '../../functions/runtime/routes.js';
import { resolveConfig } from '../../lib/config/index.js';
import { MAX_GLOB_STARS } from '../../lib/limits.js';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { call, serveFrom } from './api-support.js';

let storage: Storage;
let token: string;

beforeAll(async () => {
  storage = createStorage({ backend: 'memory' });
  serveFrom(storage, resolveConfig({}));
  token = (await storage.tokens.issue({ identity: 'messages-test', scopes: ['admin'] })).token;
});

async function messageOf(routeKey: string, body: unknown, params: Record<string, string> = {}) {
  const response = await call(routeKey, { params, body, token });
  expect(response.status, response.raw).toBe(400);
  expect(response.json.error.code).toBe('bad_request');
  return response.json.error.message as string;
}

const BANNED = /union|undefined|Expected|\bkind\b|patternProperties|anyOf/;

describe('validation messages name the field and what it takes', () => {
  it.each([
    [
      'PUT /kv/{key}',
      '{"value": 1, "ttl": 1e400}',
      'body.ttl: expected a finite number greater than 0, got a number too large to represent (Infinity)',
    ],
    [
      'PUT /kv/{key}',
      '{"value": 1, "ttl": -1e400}',
      'body.ttl: expected a finite number greater than 0, got a number too large to represent (-Infinity)',
    ],
    ['PUT /kv/{key}', '{"value": 1, "ttl": 0}', 'body.ttl: must be greater than 0, got the number 0'],
    ['PUT /kv/{key}', '{"value": 1, "ttl": -0}', 'body.ttl: must be greater than 0, got the number 0'],
    [
      'PUT /kv/{key}',
      '{"value": 1, "ttl": "NaN"}',
      'body.ttl: expected a finite number greater than 0, got "NaN"',
    ],
    ['PUT /kv/{key}', '{"ttl": 5}', 'body.value: is required (any JSON value)'],
    [
      'PUT /kv/{key}',
      '{"value": 1, "colour": "red"}',
      'body.colour: unknown field (allowed: value, ttl, nx, xx)',
    ],
    ['PUT /kv/{key}', '{"value": 1, "nx": "yes"}', 'body.nx: expected true or false, got "yes"'],
    [
      'POST /kv/{key}/expire',
      '{"ttl": -1}',
      'body.ttl: expected a finite number greater than 0 or null, got the number -1',
    ],
    [
      'POST /kv/{key}/expire',
      '{"ttl": 1e400}',
      'body.ttl: expected a finite number greater than 0 or null, got a number too large to represent (Infinity)',
    ],
    ['POST /kv/{key}/expire', '{}', 'body.ttl: is required (a finite number greater than 0 or null)'],
    ['POST /kv/{key}/incr', '{"by": 1.5}', 'body.by: expected an integer, got the number 1.5'],
    [
      'POST /kv/{key}/incr',
      '{"by": 18446744073709551616}',
      'by: must be between -9007199254740991 and 9007199254740991, got 18446744073709552000',
    ],
    ['POST /sessions', '{"clusterId": ""}', 'body.clusterId: must not be empty'],
    [
      'POST /sessions',
      '{"clusterId": 5}',
      'body.clusterId: expected a string of 1–255 characters, got the number 5',
    ],
    ['POST /sessions', '{"clusterId": "c", "data": [1]}', 'body.data: expected a JSON object, got an array'],
    ['POST /sessions', '{}', 'body.clusterId: is required (a string of 1–255 characters)'],
    ['POST /queues/{queue}/receive', '{"max": 0}', 'body.max: must be at least 1, got the number 0'],
    ['POST /queues/{queue}/receive', '{"max": 101}', 'body.max: must be at most 100, got the number 101'],
    [
      'POST /queues/{queue}/receive',
      '{"wait": 1e400}',
      'body.wait: expected a finite number at least 0 and at most 20, got a number too large to represent (Infinity)',
    ],
    [
      'POST /tokens',
      '{"identity": "a", "scopes": ["kv:reed"]}',
      'body.scopes[0]: expected one of "kv:read", "kv:write", "sessions:read", "sessions:write", "queues:send", "queues:receive", "events:publish", "events:subscribe", "admin", got "kv:reed"',
    ],
    ['POST /tokens', '{"identity": "a", "scopes": "admin"}', 'body.scopes: expected an array, got "admin"'],
    ['POST /tokens', '{"identity": "a", "scopes": []}', 'body.scopes: must have at least 1 item, got 0'],
    [
      'POST /tokens',
      '{"identity": "a", "scopes": ["admin"], "resources": [1]}',
      'body.resources[0]: expected a string of 1–255 characters, got the number 1',
    ],
    [
      'POST /tokens',
      `{"identity": "a", "scopes": ["admin"], "resources": ["team-a-${'a*'.repeat(12)}!"]}`,
      `resources[0]: has 12 '*'; a pattern may have at most ${MAX_GLOB_STARS}`,
    ],
  ])('%s %s', async (routeKey, body, message) => {
    const params = Object.fromEntries(
      [...routeKey.matchAll(/\{([^}]+)\}/g)].map(([, name]) => [name!, `vm-${name}`]),
    );
    expect(await messageOf(routeKey, body, params)).toBe(message);
  });

  it('several bad fields are all named, each once', async () => {
    expect(
      await messageOf(
        'POST /queues/{queue}/receive',
        { max: 0, wait: 21, visibilityTimeout: 'x' },
        { queue: 'q' },
      ),
    ).toBe(
      'body.max: must be at least 1, got the number 0; body.visibilityTimeout: expected a finite number greater than 0 and at most 43200, got "x"; body.wait: must be at most 20, got the number 21',
    );
  });

  it('history limit and query parameters', async () => {
    const history = (query: Record<string, string>) =>
      call('GET /channels/{channel}/messages', { params: { channel: 'c' }, query, token });
    expect((await history({ limit: 'ten' })).json.error.message).toBe(
      'query.limit: expected an integer from 1 to 1000 (default 100), got "ten"',
    );
    expect((await history({ limit: '0' })).json.error.message).toBe(
      'query.limit: must be an integer from 1 to 1000, got 0',
    );
    expect((await history({ page: '2' })).json.error.message).toBe(
      'query.page: unknown field (allowed: after, limit)',
    );
  });

  describe('no message speaks of schema internals, every one names a field', () => {
    const WRONG: [string, unknown][] = [
      ['a string', 'x'],
      ['a number', 5],
      ['a fraction', 1.5],
      ['a negative number', -1],
      ['a huge number', 1e300],
      ['true', true],
      ['null', null],
      ['an array', [1]],
      ['an object', { a: 1 }],
      ['an empty string', ''],
    ];
    const bodied = (routes as readonly RouteSpec[]).filter((route) => route.body);
    for (const route of bodied) {
      const fields = Object.keys((route.body as unknown as { properties: object }).properties);
      for (const field of fields) {
        it(`${route.method} ${route.path}: ${field}`, async () => {
          const params = Object.fromEntries(
            [...route.path.matchAll(/\{([^}]+)\}/g)].map(([, name]) => [name!, `vm-${name}`]),
          );
          for (const [what, value] of WRONG) {
            const response = await call(`${route.method} ${route.path}`, {
              params,
              body: { [field]: value },
              token,
            });
            if (response.status !== 400) continue;
            const message = String(response.json?.error?.message);
            expect(message, `${field} = ${what}`).not.toMatch(BANNED);
            expect(message, `${field} = ${what}`).toMatch(/^[A-Za-z_]+([.[][A-Za-z0-9_\]]+)*: \S/);
          }
        });
      }
    }
  });
});
