/**
 * The storage as the functions use it: every store call (`kv.get`, `queues.receive`, …) is an
 * X-Ray subsegment annotated with `backend` and `operation` where tracing is on (a plain call
 * elsewhere), and every failure is shown to `onFailure` before it reaches the caller.
 */
import type { Storage } from '../../lib/storage/types.js';
import { traceCall } from './tracing.js';

const STORES = ['kv', 'sessions', 'queues', 'events', 'tokens', 'audit', 'connections', 'consumers'] as const;

export function instrumentStorage(storage: Storage, onFailure: (error: unknown) => void): Storage {
  const observed = <T>(promise: Promise<T>): Promise<T> =>
    promise.catch((error: unknown) => {
      onFailure(error);
      throw error;
    });
  const store = <S extends object>(name: string, target: S): S => {
    const methods = new Map<string, unknown>();
    return new Proxy(target, {
      get(object, key, receiver) {
        const value: unknown = Reflect.get(object, key, receiver);
        if (typeof value !== 'function' || typeof key !== 'string') return value;
        let method = methods.get(key);
        if (method === undefined) {
          const operation = `${name}.${key}`;
          const annotations = { backend: storage.backend, operation };
          method = (...args: unknown[]) =>
            observed(traceCall(operation, annotations, async () => value.apply(object, args)));
          methods.set(key, method);
        }
        return method;
      },
    });
  };
  const wrapped: Record<string, unknown> = {
    backend: storage.backend,
    health: () =>
      observed(
        traceCall('health', { backend: storage.backend, operation: 'health' }, () => storage.health()),
      ),
    pools: () => storage.pools(),
    sweep: (options?: Parameters<Storage['sweep']>[0]) =>
      observed(
        traceCall('sweep', { backend: storage.backend, operation: 'sweep' }, () => storage.sweep(options)),
      ),
    close: () => storage.close(),
  };
  for (const name of STORES) wrapped[name] = store(name, storage[name]);
  return wrapped as unknown as Storage;
}

/** PostgreSQL SQLSTATEs of a refused login: wrong password (28P01) or user (28000). */
const POSTGRES_AUTH_STATES = new Set(['28P01', '28000']);
/** Redis's answers to a wrong password or a missing AUTH. */
const REDIS_AUTH_REPLY = /WRONGPASS|NOAUTH|invalid password|invalid username-password/i;

/** Whether `error` (or an error it wraps) is a backend refusing the credentials it was given. */
export function isAuthenticationFailure(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && POSTGRES_AUTH_STATES.has(code)) return true;
    if (REDIS_AUTH_REPLY.test(current.message)) return true;
    current = current.cause;
  }
  return false;
}
