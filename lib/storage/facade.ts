/**
 * The public stores: argument validation and defaults, written once and shared by every
 * backend, in front of a backend's drivers. Each store is its own module under `facade/`; this
 * file only puts them together.
 */
import { maxHistoryFor, type StorageConfig } from '../config/index.js';
import { createConsumerStore } from './consumers.js';
import type { Driver } from './driver.js';
import { createAuditStore } from './facade/audit.js';
import { createConnectionStore } from './facade/connections.js';
import { createEventStore } from './facade/events.js';
import { createKvStore } from './facade/kv.js';
import { checkHealth, sweep } from './facade/maintenance.js';
import { createQueueStore } from './facade/queues.js';
import { createSessionStore } from './facade/sessions.js';
import { createTokenStore } from './facade/tokens.js';
import type { Storage } from './types.js';

export { hashToken } from './facade/tokens.js';

export function createFacade(driver: Driver, config: StorageConfig): Storage {
  const maxBytes = config.limits.maxValueBytes;
  const { events, closeSubscriptions } = createEventStore(driver.events, {
    maxBytes,
    historyLimit: maxHistoryFor(config),
  });
  return {
    backend: driver.name,
    kv: createKvStore(driver.kv, maxBytes),
    sessions: createSessionStore(driver.sessions, {
      maxBytes,
      defaultTtlSeconds: config.sessions.defaultTtl,
    }),
    queues: createQueueStore(driver.queues, maxBytes),
    events,
    tokens: createTokenStore(driver.tokens, config.auth.bootstrapTokenHash),
    audit: createAuditStore(driver.audit, maxBytes),
    connections: createConnectionStore(driver.connections, config.websocket.maxConnectionsPerToken),
    consumers: createConsumerStore(driver.consumers),
    health: () => checkHealth(driver),
    pools: () => driver.pools?.() ?? {},
    sweep: (options) => sweep(driver, options, config.ttl.batchSize),
    close: async () => {
      await closeSubscriptions();
      await driver.close();
    },
  };
}
