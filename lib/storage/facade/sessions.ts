/** Sessions: checks and defaults (a new id, the configured TTL) in front of the driver's. */
import { randomUUID } from 'node:crypto';
import { ValidationError } from '../../errors.js';
import { MAX_LIST_LIMIT } from '../../limits.js';
import type { SessionDriver } from '../driver.js';
import { checkPageOptions, encodeCursor, namePosition, walkPages } from '../paging.js';
import type { SessionStore } from '../types.js';
import { checkName, checkOptionalName, checkOptions, checkTtl, serializeJsonObject } from '../validate.js';

const CREATE_FIELDS = ['clusterId', 'userId', 'correlationId', 'serviceIdentity', 'data', 'ttl'] as const;

export function createSessionStore(
  driver: SessionDriver,
  options: { maxBytes: number; defaultTtlSeconds: number },
): SessionStore {
  return {
    async create(input) {
      const i = checkOptions('input', input, CREATE_FIELDS);
      if (input === undefined) throw new ValidationError('input', 'is required');
      return driver.create({
        sessionId: randomUUID(),
        clusterId: checkName('clusterId', i.clusterId),
        userId: checkOptionalName('userId', i.userId) ?? null,
        correlationId: checkOptionalName('correlationId', i.correlationId) ?? null,
        serviceIdentity: checkOptionalName('serviceIdentity', i.serviceIdentity) ?? null,
        dataJson: i.data === undefined ? '{}' : serializeJsonObject('data', i.data, options.maxBytes),
        ttlMs: i.ttl === undefined ? Math.round(options.defaultTtlSeconds * 1000) : checkTtl('ttl', i.ttl),
      });
    },
    get: async (id) => driver.get(checkName('sessionId', id)),
    async keepAlive(id, ttl) {
      checkName('sessionId', id);
      return driver.keepAlive(id, ttl === undefined ? undefined : checkTtl('ttl', ttl));
    },
    end: async (id) => driver.end(checkName('sessionId', id)),
    byCluster: async (clusterId) => driver.byCluster(checkName('clusterId', clusterId)),
    byCorrelation: async (correlationId) => driver.byCorrelation(checkName('correlationId', correlationId)),
    activeClusters: async () =>
      walkPages((after) => driver.activeClusterPage(after, MAX_LIST_LIMIT, undefined)),
    async activeClusterPage(pageOptions) {
      const { after, limit, within } = checkPageOptions(pageOptions, 'activeClusterPage()', namePosition);
      const { items, next } = await driver.activeClusterPage(after, limit, within);
      return next === undefined ? { clusters: items } : { clusters: items, cursor: encodeCursor(next) };
    },
    isClusterActive: async (clusterId) => driver.isClusterActive(checkName('clusterId', clusterId)),
  };
}
