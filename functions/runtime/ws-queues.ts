/**
 * The WebSocket's queue frames (docs/api.md, Queue push delivery): `receive` makes the
 * connection a consumer of a queue, `ack`/`nack`/`extend` settle what it was delivered (the same
 * receipts as HTTP), `stop` ends it and gives back what it held. Every frame needs
 * `queues:receive` on its queue. Pushing itself is functions/runtime/push.ts.
 */
import { authorize, type Principal } from '../../lib/auth.js';
import { ValidationError } from '../../lib/errors.js';
import { MAX_CONSUMER_IN_FLIGHT, MAX_DELAY_SECONDS, MAX_VISIBILITY_SECONDS } from '../../lib/limits.js';
import type { Storage } from '../../lib/storage/types.js';
import { checkDelay, checkInt, checkName, checkTtl } from '../../lib/storage/validate.js';
import { logger } from './logger.js';
import { giveBack, pushQueue, type QueueServerFrame } from './push.js';

export const QUEUE_ACTIONS = ['receive', 'ack', 'nack', 'extend', 'stop'] as const;
export type QueueAction = (typeof QUEUE_ACTIONS)[number];

export type QueueFrame =
  | { action: 'receive'; queue: string; max?: number; visibilityTimeout?: number }
  | { action: 'ack'; queue: string; id: string; receipt: string }
  | { action: 'nack'; queue: string; id: string; receipt: string; delay?: number }
  | { action: 'extend'; queue: string; id: string; receipt: string; visibilityTimeout: number }
  | { action: 'stop'; queue: string };

export const QUEUE_FIELDS: Record<QueueAction, readonly string[]> = {
  receive: ['action', 'queue', 'visibilityTimeout', 'max'],
  ack: ['action', 'queue', 'id', 'receipt'],
  nack: ['action', 'queue', 'id', 'receipt', 'delay'],
  extend: ['action', 'queue', 'id', 'receipt', 'visibilityTimeout'],
  stop: ['action', 'queue'],
};

export const isQueueAction = (action: unknown): action is QueueAction =>
  (QUEUE_ACTIONS as readonly unknown[]).includes(action);

function visibility(value: unknown): number {
  const seconds = checkTtl('visibilityTimeout', value) / 1000;
  if (seconds > MAX_VISIBILITY_SECONDS)
    throw new ValidationError(
      'visibilityTimeout',
      `must be at most ${MAX_VISIBILITY_SECONDS} seconds, got ${value}`,
    );
  return value as number;
}

function required(field: string, parsed: Record<string, unknown>, what: string): unknown {
  if (!(field in parsed)) throw new ValidationError(field, `missing (${what})`);
  return parsed[field];
}

/** What an error frame answering a queue frame repeats of it: the queue, and the delivery's id of an ack, nack or extend. */
export interface QueueEcho {
  queue?: string;
  id?: string;
}

/**
 * The echo of a client's frame, from its fields as sent: each when it is a valid name (an error
 * may be about another field), nothing for a frame that is not a queue frame. Answers to a
 * connection's frames may arrive in any order (each runs in its own invocation), so this is how
 * a client tells which request an error answers.
 */
export function queueEcho(parsed: Record<string, unknown>): QueueEcho {
  const { action } = parsed;
  if (!isQueueAction(action)) return {};
  const valid = (field: string) => {
    try {
      return checkName(field, parsed[field]);
    } catch {
      return undefined;
    }
  };
  const queue = valid('queue');
  const id = action === 'ack' || action === 'nack' || action === 'extend' ? valid('id') : undefined;
  return { ...(queue === undefined ? {} : { queue }), ...(id === undefined ? {} : { id }) };
}

/** The queue frame's fields, checked (unknown fields were refused before). Throws `ValidationError`. */
export function parseQueueFrame(action: QueueAction, parsed: Record<string, unknown>): QueueFrame {
  const queue = checkName('queue', required('queue', parsed, 'the queue name'));
  switch (action) {
    case 'receive': {
      const frame: QueueFrame = { action, queue };
      if (parsed.max !== undefined) frame.max = checkInt('max', parsed.max, 1, MAX_CONSUMER_IN_FLIGHT);
      if (parsed.visibilityTimeout !== undefined)
        frame.visibilityTimeout = visibility(parsed.visibilityTimeout);
      return frame;
    }
    case 'stop':
      return { action, queue };
    default: {
      const id = checkName('id', required('id', parsed, "the delivery's id"));
      const receipt = checkName('receipt', required('receipt', parsed, "the delivery's receipt"));
      if (action === 'ack') return { action, queue, id, receipt };
      if (action === 'nack') {
        const frame: QueueFrame = { action, queue, id, receipt };
        if (parsed.delay !== undefined)
          frame.delay = checkDelay('delay', parsed.delay, MAX_DELAY_SECONDS) / 1000;
        return frame;
      }
      const visibilityTimeout = visibility(required('visibilityTimeout', parsed, 'seconds, > 0'));
      return { action, queue, id, receipt, visibilityTimeout };
    }
  }
}

/**
 * Serves one queue frame for a connection whose token verified. Throws what the frame's
 * handling threw (the caller answers it as an error frame).
 */
export async function handleQueueFrame(
  storage: Storage,
  principal: Principal,
  connectionId: string,
  frame: QueueFrame,
  reply: (frame: QueueServerFrame) => Promise<void>,
  endpoint: string | undefined,
): Promise<void> {
  const { queue } = frame;
  authorize(principal, { scope: 'queues:receive', resource: queue });
  switch (frame.action) {
    case 'receive': {
      await storage.consumers.register(connectionId, queue, {
        ...(frame.max === undefined ? {} : { max: frame.max }),
        ...(frame.visibilityTimeout === undefined ? {} : { visibilityTimeout: frame.visibilityTimeout }),
      });
      logger.info('consumer registered', { connectionId, queue, max: frame.max ?? 1 });
      // Answered before the backlog's deliveries, so a client reads `receiving` first.
      await reply({ type: 'receiving', queue });
      await pushQueue(storage, queue, endpoint);
      return;
    }
    case 'ack':
    case 'nack': {
      if (frame.action === 'ack') await storage.queues.ack(queue, frame.id, frame.receipt);
      else
        await storage.queues.nack(queue, frame.id, frame.receipt, {
          ...(frame.delay === undefined ? {} : { delay: frame.delay }),
        });
      await storage.consumers.release(queue, frame.id);
      await reply({ type: frame.action === 'ack' ? 'acked' : 'nacked', queue, id: frame.id });
      // A slot is free (and a nacked message visible again).
      await pushQueue(storage, queue, endpoint);
      return;
    }
    case 'extend': {
      await storage.queues.extend(queue, frame.id, frame.receipt, frame.visibilityTimeout);
      await storage.consumers.extend(queue, frame.id, frame.visibilityTimeout);
      await reply({ type: 'extended', queue, id: frame.id });
      return;
    }
    case 'stop': {
      const held = await storage.consumers.stop(connectionId, queue);
      logger.info('consumer stopped', { connectionId, queue, givenBack: held.length });
      await reply({ type: 'stopped', queue });
      await giveBack(storage, held, endpoint);
      return;
    }
  }
}
