/**
 * The hybrid's queue consumers' registry: each call served by the backend that holds the
 * connections (`pubsub`), through `serve`, which falls back to the other backend in an outage.
 */
import type { ConsumerDriver, Driver } from '../../driver.js';
import type { StoreDeps } from './deps.js';

/**
 * Transient: which connection waits for which queue lives where the connections do, and is
 * neither journaled nor mirrored (a consumer whose backend failed over registers again).
 */
export function hybridConsumers({ router: { read } }: StoreDeps): ConsumerDriver {
  const serve = <T>(op: string, run: (d: Driver) => Promise<T>) => read('pubsub', `consumers.${op}`, run);
  return {
    register: (queue, connectionId, max, visibilityMs) =>
      serve('register', (d) => d.consumers.register(queue, connectionId, max, visibilityMs)),
    claim: (queue, slot, nowMs) => serve('claim', (d) => d.consumers.claim(queue, slot, nowMs)),
    bind: (queue, slot, id, receipt, leaseEndsMs) =>
      serve('bind', (d) => d.consumers.bind(queue, slot, id, receipt, leaseEndsMs)),
    release: (queue, key) => serve('release', (d) => d.consumers.release(queue, key)),
    extend: (queue, id, leaseEndsMs) => serve('extend', (d) => d.consumers.extend(queue, id, leaseEndsMs)),
    stop: (queue, connectionId, nowMs) => serve('stop', (d) => d.consumers.stop(queue, connectionId, nowMs)),
    removeConnection: (connectionId, nowMs) =>
      serve('removeConnection', (d) => d.consumers.removeConnection(connectionId, nowMs)),
    queues: (limit) => serve('queues', (d) => d.consumers.queues(limit)),
    connections: (after, limit) => serve('connections', (d) => d.consumers.connections(after, limit)),
    list: (queue, nowMs) => serve('list', (d) => d.consumers.list(queue, nowMs)),
  };
}
