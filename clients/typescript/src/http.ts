import { StorageError } from './errors.js';
import { backoffMs, defaultRetryPolicy, RETRYABLE_STATUSES, type RetryPolicy, sleep } from './retry.js';

export interface TransportOptions {
  /** The HTTP API, e.g. `https://abc.execute-api.eu-west-1.amazonaws.com` or `http://localhost:3000`. */
  baseUrl: string;
  token: string;
  retry?: Partial<RetryPolicy>;
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  signal?: AbortSignal | undefined;
}

/**
 * One request with its retries: JSON in and out, the token on every request, 429 and 503
 * retried with back-off (the request was not served), every other non-2xx a StorageError.
 */
export class Transport {
  readonly baseUrl: string;
  readonly token: string;
  private readonly retry: RetryPolicy;
  private readonly fetchImpl: typeof fetch;

  constructor(options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.retry = { ...defaultRetryPolicy, ...options.retry };
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** The parsed JSON answer, or undefined for a 204. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);

    for (let attempt = 1; ; attempt++) {
      const response = await this.fetchImpl(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const text = await response.text();
      if (response.ok) return (text === '' ? undefined : JSON.parse(text)) as T;
      if (!RETRYABLE_STATUSES.has(response.status) || attempt >= this.retry.attempts) {
        throw StorageError.fromResponse(response.status, text);
      }
      await sleep(backoffMs(this.retry, attempt, response.headers.get('retry-after')), options.signal);
    }
  }
}

/** A path segment: names are URL-encoded (`a/b` → `a%2Fb`). */
export const segment = (name: string): string => encodeURIComponent(name);
