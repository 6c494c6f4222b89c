/**
 * `redis.waitForReplicas`: a write is acknowledged only once that many replicas hold it. Redis
 * replication is asynchronous — a primary answers a write before any replica has it, and a
 * failover to a replica loses what had not reached it. `WAIT n timeout` after each write blocks
 * until `n` replicas confirmed everything this connection wrote (every command of a storage goes
 * over its one command connection, so the write just made is included), or the timeout passed.
 *
 * Too few confirmations fail the write with a retryable `BackendUnavailableError`: the caller
 * must treat it as not acknowledged. It is on the primary and may or may not survive a failover;
 * a retry may apply it twice, as any retry of a write whose answer was lost.
 */
import type { Redis } from 'ioredis';
import { BackendUnavailableError } from '../../errors.js';
import type { Driver } from '../driver.js';

type StoreName = 'kv' | 'sessions' | 'queues' | 'events' | 'tokens' | 'audit' | 'connections';

/** The driver methods that change data. */
const WRITES: Record<StoreName, readonly string[]> = {
  kv: ['set', 'delete', 'expire', 'incr', 'setMany'],
  sessions: ['create', 'keepAlive', 'end'],
  // A receive that leased messages wrote their leases: a failover that lost them would deliver
  // the messages again before their leases end.
  queues: ['send', 'receive', 'ack', 'nack', 'extend', 'redrive'],
  events: ['publish'],
  tokens: ['insert', 'revoke'],
  audit: ['append'],
  connections: ['register', 'subscribe', 'unsubscribe', 'remove'],
};

export interface ReplicaWait {
  replicas: number;
  timeoutMs: number;
}

/** `driver` with a `WAIT` on `client` after every write (a receive only when it leased something). */
export function confirmWrites(driver: Driver, client: Redis, wait: ReplicaWait): Driver {
  const confirm = async () => {
    const confirmed = Number(await client.wait(wait.replicas, wait.timeoutMs));
    if (confirmed < wait.replicas) {
      throw new BackendUnavailableError(
        'redis',
        `the write reached the primary, but ${confirmed} of the ${wait.replicas} replica(s) redis.waitForReplicas asks for confirmed it within ${wait.timeoutMs} ms: not acknowledged (it may or may not survive a failover)`,
        { retryable: true },
      );
    }
  };
  const wrapStore = <T extends object>(store: T, writes: readonly string[]): T => {
    const wrapped = { ...store } as Record<string, unknown>;
    for (const name of writes) {
      const method = (store as Record<string, unknown>)[name];
      if (typeof method !== 'function') throw new Error(`no driver method ${name} to confirm`);
      wrapped[name] = async (...args: unknown[]) => {
        const result: unknown = await method.apply(store, args);
        if (!(Array.isArray(result) && result.length === 0 && name === 'receive')) await confirm();
        return result;
      };
    }
    return wrapped as T;
  };
  const out = { ...driver };
  for (const [store, writes] of Object.entries(WRITES) as [StoreName, readonly string[]][]) {
    (out as Record<StoreName, object>)[store] = wrapStore(driver[store], writes);
  }
  return out;
}
