/**
 * Queue push delivery over the WebSocket (docs/api.md, Queue push delivery). A consumer is a
 * connection waiting for a queue's messages (lib/storage/consumers.ts keeps them beside the
 * connections); no function runs while it waits. Whatever may make a message deliverable pushes
 * the queue: a send, an ack or nack that frees a consumer's slot, a consumer registering, a
 * give-back, and the scheduled cleanup (delayed messages and ended leases).
 *
 * A push claims a slot on the least-loaded consumer with room (atomic in the registry), leases
 * one message for it exactly as an HTTP receive does (same receipt and attempts), binds the
 * message to the slot and posts a `delivery` frame. A frame that cannot be posted gives the
 * lease back at once with a nack without delay; the nack counts the delivery as an attempt, so
 * a message that can never be posted (its frame over API Gateway's limit) reaches the dead
 * letters after `queues.maxAttempts` rather than circling forever. A 410 (connection gone) also
 * ends every consumer of that connection and gives back what it held.
 */
import { ConflictError, NotFoundError } from '../../lib/errors.js';
import type { HeldDelivery, ReceivedMessage, Storage } from '../../lib/storage/types.js';
import { websocketEndpoint } from './aws.js';
import { logger } from './logger.js';
import { emitMetric } from './metrics.js';
import { postFrame } from './relay.js';

/** Deliveries one push makes at most; the next send, ack or cleanup run goes on. */
export const PUSH_BUDGET = 100;

/** The frame a pushed message arrives in. */
export interface DeliveryFrame {
  type: 'delivery';
  queue: string;
  id: string;
  receipt: string;
  payload: ReceivedMessage['payload'];
  attempts: number;
  enqueuedAt: string;
}

/** The frames of push delivery the server sends. */
export type QueueServerFrame =
  | DeliveryFrame
  | { type: 'receiving' | 'stopped'; queue: string }
  | { type: 'acked' | 'nacked' | 'extended'; queue: string; id: string };

export function deliveryFrame(queue: string, message: ReceivedMessage): DeliveryFrame {
  const { id, receipt, payload, attempts, enqueuedAt } = message;
  return { type: 'delivery', queue, id, receipt, payload, attempts, enqueuedAt };
}

/**
 * Hands the queue's deliverable messages to its consumers until none has room, no message is
 * visible, or `PUSH_BUDGET` deliveries are made. Answers how many were delivered. Never throws:
 * a push that fails is logged, and the messages wait for the next push.
 */
export async function pushQueue(
  storage: Storage,
  queue: string,
  endpoint: string | undefined = websocketEndpoint(),
): Promise<number> {
  let delivered = 0;
  let givenBack = 0;
  try {
    if (!endpoint) {
      if ((await storage.consumers.list(queue)).length > 0)
        logger.error('queue not pushed: no WebSocket endpoint (set WEBSOCKET_ENDPOINT)', { queue });
      return 0;
    }
    for (let n = 0; n < PUSH_BUDGET; n++) {
      const slot = await storage.consumers.claim(queue);
      if (!slot) break;
      let message: ReceivedMessage | undefined;
      try {
        [message] = await storage.queues.receive(queue, {
          max: 1,
          visibilityTimeout: slot.visibilityTimeout,
        });
      } finally {
        if (!message) await storage.consumers.release(queue, slot.slot);
      }
      if (!message) break;
      if (!(await storage.consumers.bind(queue, slot.slot, message, slot.visibilityTimeout))) {
        // The consumer stopped or closed between the claim and now.
        await nackQuietly(storage, queue, message.id, message.receipt);
        givenBack += 1;
        continue;
      }
      const result = await postFrame(endpoint, slot.connectionId, deliveryFrame(queue, message));
      if (result === 'delivered') {
        delivered += 1;
        continue;
      }
      await storage.consumers.release(queue, message.id);
      await nackQuietly(storage, queue, message.id, message.receipt);
      givenBack += 1;
      logger.info('delivery not posted: lease given back', {
        queue,
        id: message.id,
        connectionId: slot.connectionId,
        result,
      });
      if (result === 'gone') {
        // Counted (PushGiveBacks) by giveBack itself.
        await endConsumers(storage, slot.connectionId, endpoint, false);
        await storage.connections.remove(slot.connectionId).catch(() => false);
      } else {
        // Throttled or refused for now: the next push tries again, not a loop on this one.
        break;
      }
    }
  } catch (error) {
    logger.error('queue push failed', { queue, delivered, error });
  }
  if (delivered > 0) emitMetric({ name: 'PushDeliveries', value: delivered, unit: 'Count', dimensions: {} });
  if (givenBack > 0) emitMetric({ name: 'PushGiveBacks', value: givenBack, unit: 'Count', dimensions: {} });
  return delivered;
}

/**
 * Gives the messages back (nack without delay) and pushes their queues to the consumers left.
 * Never throws. Answers how many leases were given back.
 */
export async function giveBack(
  storage: Storage,
  held: readonly HeldDelivery[],
  endpoint: string | undefined = websocketEndpoint(),
  push = true,
): Promise<number> {
  let count = 0;
  for (const delivery of held) {
    if (await nackQuietly(storage, delivery.queue, delivery.id, delivery.receipt)) count += 1;
  }
  if (count > 0) emitMetric({ name: 'PushGiveBacks', value: count, unit: 'Count', dimensions: {} });
  if (push) for (const queue of new Set(held.map((d) => d.queue))) await pushQueue(storage, queue, endpoint);
  return count;
}

/**
 * Ends every consumer of a connection that closed (or is closing) and gives back what it held.
 * Never throws.
 */
export async function endConsumers(
  storage: Storage,
  connectionId: string,
  endpoint: string | undefined = websocketEndpoint(),
  push = true,
): Promise<number> {
  try {
    const held = await storage.consumers.removeConnection(connectionId);
    const count = await giveBack(storage, held, endpoint, push);
    if (held.length > 0) logger.info('consumer deliveries given back', { connectionId, count });
    return count;
  } catch (error) {
    logger.error('consumers of a closed connection could not be ended', { connectionId, error });
    return 0;
  }
}

/** Consumer connections looked at per registry read by the cleanup's sweep. */
const CONSUMER_PAGE = 1000;

/**
 * Ends the consumers of connections that no longer exist (expired, or closed without a
 * `$disconnect`: API Gateway does not always send one) and gives back what they held: the
 * scheduled cleanup's part, at most `limit` connections per run (the next run goes on). Nothing
 * is pushed here: the cleanup pushes every queue with consumers next. Answers the connections
 * whose consumers were ended; throws when a registry cannot be read.
 */
export async function endConsumersOfGoneConnections(storage: Storage, limit: number): Promise<number> {
  let ended = 0;
  let after: string | undefined;
  for (;;) {
    const page = await storage.consumers.connections({
      ...(after === undefined ? {} : { after }),
      limit: CONSUMER_PAGE,
    });
    for (const connectionId of page) {
      if (ended >= limit) return ended;
      if (await storage.connections.get(connectionId)) continue;
      const held = await storage.consumers.removeConnection(connectionId);
      const count = await giveBack(storage, held, undefined, false);
      logger.info('consumers of a gone connection ended', { connectionId, givenBack: count });
      ended += 1;
    }
    if (page.length < CONSUMER_PAGE) return ended;
    after = page.at(-1);
  }
}

/**
 * Nack without delay; answers whether the lease was given back. A receipt no longer current
 * (the message was acked, or its lease ended and it went to another) has nothing to give back.
 */
async function nackQuietly(storage: Storage, queue: string, id: string, receipt: string): Promise<boolean> {
  try {
    await storage.queues.nack(queue, id, receipt);
    return true;
  } catch (error) {
    if (!(error instanceof ConflictError || error instanceof NotFoundError))
      logger.warn('lease could not be given back; it ends on its own', { queue, id, error });
    return false;
  }
}
