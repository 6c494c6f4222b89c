/**
 * Queue routes of docs/api.md: send, receive (long poll), ack, nack, stats. The resource is the
 * queue name. A send, and an ack or nack of a pushed delivery, push the queue to its WebSocket
 * consumers (functions/runtime/push.ts) before answering.
 */
import type { Context } from 'aws-lambda';
import type { Json } from '../lib/storage/types.js';
import { httpApi } from './runtime/api.js';
import { json, noContent } from './runtime/http.js';
import { pushQueue } from './runtime/push.js';

// Time kept back from a long poll for the answer to reach the caller before the function's
// timeout: a receive cut off by the timeout would lease messages to no one until their
// visibility timeout ends.
const ANSWER_MARGIN_MS = 2_000;

/** `wait` shortened to what the invocation has left (serverless.yml gives this function 29 s). */
function waitWithin(wait: number | undefined, context: Context): number | undefined {
  if (wait === undefined || wait === 0) return wait;
  const left = (context.getRemainingTimeInMillis?.() ?? Number.POSITIVE_INFINITY) - ANSWER_MARGIN_MS;
  return Math.max(0, Math.min(wait, Math.floor(left) / 1000));
}

export const handler = httpApi('queues', {
  'POST /queues/{queue}/messages': async ({ storage, params: { queue }, body, authorizeResource }) => {
    authorizeResource(queue!);
    const { id, duplicate } = await storage.queues.send(queue!, body.payload as Json, {
      delay: body.delay,
      dedupId: body.dedupId,
    });
    // A duplicate enqueued nothing; a delayed message is pushed when due (the cleanup's schedule).
    if (!duplicate) await pushQueue(storage, queue!);
    return json(duplicate ? 200 : 201, { id });
  },

  'POST /queues/{queue}/receive': async ({
    storage,
    params: { queue },
    body,
    context,
    authorizeResource,
  }) => {
    authorizeResource(queue!);
    const messages = await storage.queues.receive(queue!, { ...body, wait: waitWithin(body.wait, context) });
    return json(200, { messages });
  },

  'POST /queues/{queue}/messages/{id}/ack': async ({
    storage,
    params: { queue, id },
    body,
    authorizeResource,
  }) => {
    authorizeResource(queue!);
    await storage.queues.ack(queue!, id!, body.receipt);
    // A pushed delivery acked over HTTP frees its consumer's slot.
    if ((await storage.consumers.release(queue!, id!)) !== undefined) await pushQueue(storage, queue!);
    return noContent();
  },

  'POST /queues/{queue}/messages/{id}/nack': async ({
    storage,
    params: { queue, id },
    body,
    authorizeResource,
  }) => {
    authorizeResource(queue!);
    await storage.queues.nack(queue!, id!, body.receipt, { delay: body.delay });
    if ((await storage.consumers.release(queue!, id!)) !== undefined) await pushQueue(storage, queue!);
    return noContent();
  },

  'GET /queues/{queue}': async ({ storage, params: { queue }, authorizeResource }) => {
    authorizeResource(queue!);
    const { depth, inFlight, dead } = await storage.queues.stats(queue!);
    return json(200, { queue, depth, inFlight, dead });
  },
});
