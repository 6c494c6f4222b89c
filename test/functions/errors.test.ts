import { Logger } from '@aws-lambda-powertools/logger';
import { describe, expect, it, vi } from 'vitest';
import { errorResponse } from '../../functions/runtime/errors.js';
import {
  BackendUnavailableError,
  ConfigError,
  ConflictError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from '../../lib/errors.js';

const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });

function mapped(error: unknown) {
  const response = errorResponse(error, logger);
  return {
    status: response.statusCode,
    type: response.headers?.['content-type'],
    body: JSON.parse(response.body),
  };
}

/** What middy's own middlewares throw (`createError` from @middy/util). */
function middyHttpError(statusCode: number, message: string) {
  return Object.assign(new Error(message), { statusCode, status: statusCode, expose: statusCode < 500 });
}

describe('errorResponse: errors become docs/api.md error bodies', () => {
  it.each([
    [new ValidationError('key', 'must not be empty'), 400, 'bad_request', 'key: must not be empty'],
    [new PayloadTooLargeError('value', 'is too big'), 413, 'payload_too_large', 'value: is too big'],
    [new NotFoundError('no such key'), 404, 'not_found', 'no such key'],
    [new ConflictError('key exists'), 409, 'conflict', 'key exists'],
    [
      new BackendUnavailableError('redis', 'connect ECONNREFUSED 10.0.0.5:6379'),
      503,
      'unavailable',
      'redis is unavailable; retry later',
    ],
    [
      new BackendUnavailableError('redis', 'NOPERM no access to key', { retryable: false }),
      503,
      'unavailable',
      'redis is unavailable',
    ],
  ])('%s → %i %s', (error, status, code, message) => {
    expect(mapped(error)).toEqual({ status, type: 'application/json', body: { error: { code, message } } });
  });

  it('maps an invalid configuration to 503 unavailable with every problem on one line', () => {
    const { status, body } = mapped(new ConfigError(['backend: bad', 'redis.url: missing']));
    expect(status).toBe(503);
    expect(body).toEqual({
      error: { code: 'unavailable', message: 'invalid configuration: backend: bad; redis.url: missing' },
    });
  });

  it('maps middy client errors (malformed JSON, wrong content type) to 400 bad_request', () => {
    expect(mapped(middyHttpError(422, 'Invalid or malformed JSON was provided'))).toMatchObject({
      status: 400,
      body: { error: { code: 'bad_request', message: 'Invalid or malformed JSON was provided' } },
    });
    expect(mapped(middyHttpError(415, 'Unsupported Media Type')).status).toBe(400);
    expect(mapped(middyHttpError(413, 'Payload Too Large')).body.error.code).toBe('payload_too_large');
  });

  it('answers anything else with 500 internal and an id that is logged with the error', () => {
    const logged = vi.spyOn(logger, 'error');
    const error = new RangeError('stack and secrets');
    const { status, body } = mapped(error);

    expect(status).toBe(500);
    expect(body.error.code).toBe('internal');
    const id = /^internal error \(id ([0-9a-f-]{36})\)$/.exec(body.error.message)?.[1];
    expect(id).toBeDefined();
    expect(JSON.stringify(body)).not.toContain('secrets');
    expect(logged).toHaveBeenCalledWith('unexpected error', { errorId: id, error });
    // A 5xx HttpError is not exposed either.
    expect(mapped(middyHttpError(502, 'upstream said no')).body.error.code).toBe('internal');
  });
});
