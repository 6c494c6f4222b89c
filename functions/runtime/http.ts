import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { ErrorCode } from '../../lib/errors.js';

/**
 * The codes of docs/api.md's error body; `internal` only for failures that are not the caller's,
 * `method_not_allowed` (405) for a known path asked with a method it does not serve.
 */
export type ApiErrorCode = ErrorCode | 'internal' | 'method_not_allowed';

export interface ApiErrorBody {
  error: { code: ApiErrorCode; message: string };
}

export type HttpResponse = APIGatewayProxyStructuredResultV2 & { statusCode: number; body: string };

/** A JSON response; every API route answers `content-type: application/json`. */
export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

/** docs/api.md's error body: `{"error": {"code", "message"}}`. */
export function errorBody(code: ApiErrorCode, message: string): ApiErrorBody {
  return { error: { code, message } };
}

/** A response without a body (204). */
export function noContent(): APIGatewayProxyStructuredResultV2 {
  return { statusCode: 204 };
}
