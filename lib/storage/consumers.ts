/**
 * The queue consumers' registry as callers see it (types.ts, `ConsumerStore`): arguments checked
 * once here, durations turned into epoch-ms lease ends on this process's clock, slot ids made
 * here. Each backend keeps the records (`ConsumerDriver`): memory, redis/consumers.ts,
 * postgresql/consumers.ts; a hybrid keeps them where it keeps the connections.
 */
import { randomUUID } from 'node:crypto';
import { ValidationError } from '../errors.js';
import { DEFAULT_VISIBILITY_SECONDS, MAX_CONSUMER_IN_FLIGHT, MAX_VISIBILITY_SECONDS } from '../limits.js';
import type { ConsumerDriver } from './driver.js';
import type { ConsumerStore } from './types.js';
import { checkInt, checkName, checkOptions, checkTtl } from './validate.js';

const DEFAULT_VISIBILITY_MS = DEFAULT_VISIBILITY_SECONDS * 1000;
/** Slot ids cannot be message ids: no backend's message id starts with `~`. */
const SLOT_PREFIX = '~';
/** Queues or connection ids answered at most by one call. */
const MAX_PAGE = 1000;

function checkVisibility(field: string, value: unknown): number {
  const ms = checkTtl(field, value);
  if (ms > MAX_VISIBILITY_SECONDS * 1000)
    throw new ValidationError(field, `must be at most ${MAX_VISIBILITY_SECONDS} seconds, got ${value}`);
  return ms;
}

export function createConsumerStore(driver: ConsumerDriver): ConsumerStore {
  return {
    async register(connectionId, queue, options) {
      checkName('connectionId', connectionId);
      checkName('queue', queue);
      const o = checkOptions('options', options, ['max', 'visibilityTimeout']);
      const max = o.max === undefined ? 1 : checkInt('options.max', o.max, 1, MAX_CONSUMER_IN_FLIGHT);
      const visibilityMs =
        o.visibilityTimeout === undefined
          ? DEFAULT_VISIBILITY_MS
          : checkVisibility('options.visibilityTimeout', o.visibilityTimeout);
      await driver.register(queue, connectionId, max, visibilityMs);
    },
    async claim(queue) {
      checkName('queue', queue);
      const slot = `${SLOT_PREFIX}${randomUUID()}`;
      const claimed = await driver.claim(queue, slot, Date.now());
      if (!claimed) return undefined;
      return { slot, connectionId: claimed.connectionId, visibilityTimeout: claimed.visibilityMs / 1000 };
    },
    async bind(queue, slot, message, visibilityTimeout) {
      checkName('queue', queue);
      checkName('slot', slot);
      checkName('message.id', message?.id);
      checkName('message.receipt', message.receipt);
      const ms = checkVisibility('visibilityTimeout', visibilityTimeout);
      return driver.bind(queue, slot, message.id, message.receipt, Date.now() + ms);
    },
    async release(queue, slotOrId) {
      checkName('queue', queue);
      return driver.release(queue, checkName('slotOrId', slotOrId));
    },
    async extend(queue, id, visibilityTimeout) {
      checkName('queue', queue);
      checkName('id', id);
      const ms = checkVisibility('visibilityTimeout', visibilityTimeout);
      return driver.extend(queue, id, Date.now() + ms);
    },
    async stop(connectionId, queue) {
      checkName('connectionId', connectionId);
      checkName('queue', queue);
      return driver.stop(queue, connectionId, Date.now());
    },
    removeConnection: async (connectionId) =>
      driver.removeConnection(checkName('connectionId', connectionId), Date.now()),
    queues: async () => driver.queues(MAX_PAGE),
    async connections(options) {
      const o = checkOptions('options', options, ['after', 'limit']);
      const after = o.after === undefined ? '' : checkName('options.after', o.after);
      const limit = o.limit === undefined ? MAX_PAGE : checkInt('options.limit', o.limit, 1, MAX_PAGE);
      return driver.connections(after, limit);
    },
    list: async (queue) => driver.list(checkName('queue', queue), Date.now()),
  };
}

/** Whether a delivery key is a claimed slot not yet bound to a message. */
export const isSlot = (key: string) => key.startsWith(SLOT_PREFIX);
