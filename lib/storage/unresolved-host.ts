/**
 * A backend host whose name does not resolve. `ENOTFOUND` (the name does not exist) is a
 * configuration error — a typo in a URL, a deleted endpoint — that a retry meets again, so it is
 * not retryable and its message names the host. `EAI_AGAIN` (the DNS server gave no answer) is
 * named the same way but stays retryable: on Lambda it is also what a throttled VPC resolver
 * answers for a host that exists, and a hybrid fails over only on retryable errors.
 */
import { BackendUnavailableError } from '../errors.js';

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN']);

export interface UnresolvedHost {
  host: string;
  code: 'ENOTFOUND' | 'EAI_AGAIN';
}

/**
 * The failed lookup inside `error`, if any: the error itself, its `cause`, a DOM-style error
 * event's `error` (the Neon driver's WebSocket), or one of an `AggregateError`'s errors.
 */
export function unresolvedHost(error: unknown, depth = 0): UnresolvedHost | undefined {
  if (typeof error !== 'object' || error === null || depth > 4) return undefined;
  const { code, hostname, message } = error as { code?: unknown; hostname?: unknown; message?: unknown };
  if (typeof code === 'string' && DNS_CODES.has(code)) {
    const host =
      typeof hostname === 'string'
        ? hostname
        : typeof message === 'string'
          ? /getaddrinfo \w+ (\S+)/.exec(message)?.[1]
          : undefined;
    if (host) return { host, code: code as UnresolvedHost['code'] };
  }
  const inner = [
    (error as { cause?: unknown }).cause,
    (error as { error?: unknown }).error,
    ...(error instanceof AggregateError ? error.errors : []),
  ];
  for (const candidate of inner) {
    const found = unresolvedHost(candidate, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/**
 * A `BackendUnavailableError` naming the host that does not resolve, or undefined when `error`
 * is not a failed lookup. `setting` says where the host comes from (`redis.url / REDIS_URL`).
 */
export function unresolvedHostError(
  backend: string,
  error: unknown,
  setting: string,
): BackendUnavailableError | undefined {
  const found = unresolvedHost(error);
  if (!found) return undefined;
  const name = JSON.stringify(found.host);
  const detail =
    found.code === 'ENOTFOUND'
      ? `host ${name} does not resolve (a configuration error)`
      : `host ${name} could not be resolved (no answer from DNS)`;
  return new BackendUnavailableError(backend, `${detail}: check ${setting} [${found.code}]`, {
    cause: error,
    retryable: found.code === 'EAI_AGAIN',
    publicDetail: detail,
  });
}
