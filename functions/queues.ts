/** Queue routes of API.md: send, receive (long poll), ack, nack, stats. The resource is the queue name. */
import type { Json } from '../lib/storage/types.js';
import { type ApiRequest, httpApi } from './lib/api.js';
import { json, noContent } from './lib/http.js';

export const handler = httpApi('queues', {
  'POST /queues/{queue}/messages': async ({
    storage,
    params: { queue },
    body,
    authorizeResource,
  }: ApiRequest<{ payload: unknown; delay?: number; dedupId?: string }>) => {
    authorizeResource(queue!);
    const { id, duplicate } = await storage.queues.send(queue!, body.payload as Json, {
      delay: body.delay,
      dedupId: body.dedupId,
    });
    return json(duplicate ? 200 : 201, { id });
  },

  'POST /queues/{queue}/receive': async ({
    storage,
    params: { queue },
    body,
    authorizeResource,
  }: ApiRequest<{ max?: number; visibilityTimeout?: number; wait?: number }>) => {
    authorizeResource(queue!);
    const messages = await storage.queues.receive(queue!, body);
    return json(200, { messages });
  },

  'POST /queues/{queue}/messages/{id}/ack': async ({
    storage,
    params: { queue, id },
    body,
    authorizeResource,
  }: ApiRequest<{ receipt: string }>) => {
    authorizeResource(queue!);
    await storage.queues.ack(queue!, id!, body.receipt);
    return noContent();
  },

  'POST /queues/{queue}/messages/{id}/nack': async ({
    storage,
    params: { queue, id },
    body,
    authorizeResource,
  }: ApiRequest<{ receipt: string; delay?: number }>) => {
    authorizeResource(queue!);
    await storage.queues.nack(queue!, id!, body.receipt, { delay: body.delay });
    return noContent();
  },

  'GET /queues/{queue}': async ({ storage, params: { queue }, authorizeResource }) => {
    authorizeResource(queue!);
    const { depth, inFlight, dead } = await storage.queues.stats(queue!);
    return json(200, { queue, depth, inFlight, dead });
  },
});
