import type { ErrorCode } from './types.js';

/**
 * An answer of the API that is not a success: the status, and the `code` and `message` of its
 * `{"error":{"code","message"}}` body. A body without that shape (a proxy's page) keeps the
 * status and gets the code `unexpected_response`.
 */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode | 'unexpected_response',
    message: string,
  ) {
    super(message);
  }

  /** Builds the error from a response body (already read as text). */
  static fromResponse(status: number, text: string): StorageError {
    try {
      const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
      const { code, message } = body.error ?? {};
      if (typeof code === 'string' && typeof message === 'string') {
        return new StorageError(status, code as ErrorCode, message);
      }
    } catch {
      // Not JSON: fall through.
    }
    return new StorageError(status, 'unexpected_response', `HTTP ${status}: ${text.slice(0, 200)}`);
  }
}

/** An error frame the WebSocket answered with (`{"type":"error","code","message"}`). */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
