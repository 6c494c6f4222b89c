/** Queues: checks and defaults (lease, delay, long poll) in front of the driver's. */
import { ValidationError } from '../../errors.js';
import {
  DEFAULT_RECEIVE_MAX,
  DEFAULT_VISIBILITY_SECONDS,
  MAX_DELAY_SECONDS,
  MAX_RECEIVE_MAX,
  MAX_VISIBILITY_SECONDS,
  MAX_WAIT_SECONDS,
} from '../../limits.js';
import type { QueueDriver } from '../driver.js';
import { checkListLimit } from '../paging.js';
import type { QueueStore } from '../types.js';
import {
  checkDelay,
  checkInt,
  checkName,
  checkOptionalName,
  checkOptions,
  checkTtl,
  serializeJson,
} from '../validate.js';

export function createQueueStore(driver: QueueDriver, maxBytes: number): QueueStore {
  return {
    async send(queue, payload, options) {
      checkName('queue', queue);
      const json = serializeJson('payload', payload, maxBytes);
      const o = checkOptions('options', options, ['delay', 'dedupId']);
      const dedupId = checkOptionalName('options.dedupId', o.dedupId);
      return driver.send(
        queue,
        json,
        o.delay === undefined ? 0 : checkDelay('options.delay', o.delay, MAX_DELAY_SECONDS),
        dedupId,
      );
    },
    async receive(queue, options) {
      checkName('queue', queue);
      const o = checkOptions('options', options, ['max', 'visibilityTimeout', 'wait']);
      const max =
        o.max === undefined ? DEFAULT_RECEIVE_MAX : checkInt('options.max', o.max, 1, MAX_RECEIVE_MAX);
      const visibilityMs =
        o.visibilityTimeout === undefined
          ? DEFAULT_VISIBILITY_SECONDS * 1000
          : checkVisibility('options.visibilityTimeout', o.visibilityTimeout);
      const waitMs = o.wait === undefined ? 0 : checkDelay('options.wait', o.wait, MAX_WAIT_SECONDS);
      return driver.receive(queue, max, visibilityMs, waitMs);
    },
    async ack(queue, id, receipt) {
      checkLease(queue, id, receipt);
      return driver.ack(queue, id, receipt);
    },
    async nack(queue, id, receipt, options) {
      checkLease(queue, id, receipt);
      const o = checkOptions('options', options, ['delay']);
      return driver.nack(
        queue,
        id,
        receipt,
        o.delay === undefined ? 0 : checkDelay('options.delay', o.delay, MAX_DELAY_SECONDS),
      );
    },
    async extend(queue, id, receipt, visibilityTimeout) {
      checkLease(queue, id, receipt);
      return driver.extend(queue, id, receipt, checkVisibility('visibilityTimeout', visibilityTimeout));
    },
    stats: async (queue) => driver.stats(checkName('queue', queue)),
    async deadLetters(queue, options) {
      checkName('queue', queue);
      const o = checkOptions('options', options, ['limit']);
      return driver.deadLetters(queue, checkListLimit('options.limit', o.limit));
    },
    async redrive(queue, options) {
      checkName('queue', queue);
      const o = checkOptions('options', options, ['limit']);
      return driver.redrive(queue, checkListLimit('options.limit', o.limit));
    },
  };
}

/** A lease in seconds, as a TTL but at most `MAX_VISIBILITY_SECONDS`; answers ms. */
function checkVisibility(field: string, value: unknown): number {
  const ms = checkTtl(field, value);
  if (ms > MAX_VISIBILITY_SECONDS * 1000) {
    throw new ValidationError(field, `must be at most ${MAX_VISIBILITY_SECONDS} seconds`);
  }
  return ms;
}

function checkLease(queue: unknown, id: unknown, receipt: unknown): void {
  checkName('queue', queue);
  checkName('id', id);
  checkName('receipt', receipt);
}
