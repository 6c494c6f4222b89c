/** When and how long to wait before trying a request again. */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 4). */
  attempts: number;
  /** The first back-off ceiling in ms; doubled per attempt (default 100). */
  baseDelayMs: number;
  /** The largest back-off in ms (default 5000). */
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { attempts: 4, baseDelayMs: 100, maxDelayMs: 5000 };

/** Only these statuses are retried: the request was not served, so sending it again is safe. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/**
 * The wait before attempt `attempt + 1` (attempt counts from 1): full jitter over an exponential
 * ceiling, so many clients retrying at once spread out; a `Retry-After` in seconds is a floor.
 */
export function backoffMs(policy: RetryPolicy, attempt: number, retryAfter?: string | null): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = Math.random() * ceiling;
  const seconds = retryAfter ? Number(retryAfter) : Number.NaN;
  return Number.isFinite(seconds) && seconds >= 0
    ? Math.min(policy.maxDelayMs, Math.max(jittered, seconds * 1000))
    : jittered;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
