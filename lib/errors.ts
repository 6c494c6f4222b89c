/**
 * Typed errors raised by the storage library. Each carries a stable `code` and the HTTP
 * `status` the API edge answers with, so handlers map errors in one place and never leak
 * driver messages or stack traces.
 */

export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'unavailable';

export abstract class StorageError extends Error {
  abstract readonly code: ErrorCode;
  abstract readonly status: number;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/** An argument failed validation. `field` names the argument (e.g. `key`, `options.ttl`). */
export class ValidationError extends StorageError {
  readonly code: ErrorCode = 'bad_request';
  readonly status: number = 400;

  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** A value (or message, or payload) is larger than the configured limit. */
export class PayloadTooLargeError extends ValidationError {
  override readonly code: ErrorCode = 'payload_too_large';
  override readonly status: number = 413;
}

export class UnauthorizedError extends StorageError {
  readonly code = 'unauthorized' as const;
  readonly status = 401;
}

export class ForbiddenError extends StorageError {
  readonly code = 'forbidden' as const;
  readonly status = 403;
}

/** The named item does not exist (or has expired). */
export class NotFoundError extends StorageError {
  readonly code = 'not_found' as const;
  readonly status = 404;
}

/**
 * The operation conflicts with the item's current state: `nx` on an existing key, `xx` on a
 * missing one, `incr` on a non-integer, a queue receipt that is no longer current.
 */
export class ConflictError extends StorageError {
  readonly code = 'conflict' as const;
  readonly status = 409;
}

/**
 * The backend cannot serve the operation. `retryable` is true when it could not be reached or
 * did not answer in time (the operation may not have run: retry it); false when it answered
 * with a refusal that a retry will meet again (permissions, out of memory, a foreign key).
 */
export class BackendUnavailableError extends StorageError {
  readonly code = 'unavailable' as const;
  readonly status = 503;
  readonly retryable: boolean;
  /**
   * What callers may be told besides the backend's name (the HTTP edge never shows `message`:
   * driver messages name ports and users). Set only for a cause the caller can act on or report,
   * such as a host name that does not resolve.
   */
  readonly publicDetail: string | undefined;

  constructor(
    readonly backend: string,
    message: string,
    options?: { cause?: unknown; retryable?: boolean; publicDetail?: string },
  ) {
    super(`${backend} unavailable: ${message}`, options);
    this.retryable = options?.retryable ?? true;
    this.publicDetail = options?.publicDetail;
  }
}

/**
 * The PostgreSQL connection is not what `postgresql.pooler` says: a pooler that lends server
 * sessions per transaction (PgBouncer in transaction mode, a Neon `-pooler` endpoint) where the
 * configuration relies on a session of its own. `setting` names what to change. Not retryable:
 * every retry meets the same pooler.
 */
export class PoolerMismatchError extends BackendUnavailableError {
  constructor(
    readonly setting: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('postgresql', message, { ...options, retryable: false });
  }
}

/** The configuration is invalid; `problems` lists every bad field with its path. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export function isStorageError(error: unknown): error is StorageError {
  return error instanceof StorageError;
}
