import { randomUUID } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import { BackendUnavailableError, ConfigError, isStorageError } from '../../lib/errors.js';
import { type ApiErrorCode, errorBody, type HttpResponse, json } from './http.js';

/** The one-line message of a `ConfigError`, naming every bad field (its own message is multi-line). */
export function configErrorMessage(error: ConfigError): string {
  return `invalid configuration: ${error.problems.join('; ')}`;
}

// Client errors raised by middy middlewares (`createError` from @middy/util), mapped to docs/api.md's
// codes; 415 and 422, what middy's body parsers answer, are bad input: a 400.
const CLIENT_ERROR_CODES: Record<number, ApiErrorCode> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'bad_request',
  422: 'bad_request',
};

interface MiddyHttpError {
  statusCode: number;
  expose: boolean;
  message: string;
}

function isMiddyHttpError(error: unknown): error is MiddyHttpError {
  return (
    error instanceof Error &&
    typeof (error as Partial<MiddyHttpError>).statusCode === 'number' &&
    typeof (error as Partial<MiddyHttpError>).expose === 'boolean'
  );
}

/**
 * Maps anything a handler throws to a docs/api.md error response, and logs it. The library's typed
 * errors carry their own `status` and `code`; a `ConfigError` means nothing can serve (503);
 * anything else is a bug: 500 with an id that is logged with the full error, so the caller gets
 * something to quote and never a stack trace.
 */
export function errorResponse(error: unknown, logger: Logger): HttpResponse {
  if (isStorageError(error)) {
    if (error.status < 500) {
      logger.info('request refused', { status: error.status, code: error.code, reason: error.message });
      return json(error.status, errorBody(error.code, error.message));
    }
    // Driver messages name hosts and ports: logged, never shown to callers.
    logger.error('storage error', { code: error.code, error });
    const message =
      error instanceof BackendUnavailableError
        ? `${error.backend} is unavailable${error.publicDetail ? `: ${error.publicDetail}` : ''}${error.retryable ? '; retry later' : ''}`
        : 'storage is unavailable';
    return json(error.status, errorBody(error.code, message));
  }
  if (error instanceof ConfigError) {
    logger.error('invalid storage configuration', { problems: error.problems });
    return json(503, errorBody('unavailable', configErrorMessage(error)));
  }
  if (isMiddyHttpError(error) && error.expose && CLIENT_ERROR_CODES[error.statusCode]) {
    const code = CLIENT_ERROR_CODES[error.statusCode]!;
    const status = code === 'bad_request' ? 400 : error.statusCode;
    logger.info('request refused', { status, code, reason: error.message });
    return json(status, errorBody(code, error.message));
  }
  const errorId = randomUUID();
  logger.error('unexpected error', { errorId, error: error instanceof Error ? error : String(error) });
  return json(500, errorBody('internal', `internal error (id ${errorId})`));
}
