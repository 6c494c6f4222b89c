/**
 * Events routes of docs/api.md: `POST /channels/{channel}/messages` stores the event, then relays
 * it to the channel's WebSocket subscribers; `GET /channels/{channel}/messages` reads history.
 */
import { ValidationError } from '../lib/errors.js';
import { MAX_LIST_LIMIT } from '../lib/limits.js';
import type { Json } from '../lib/storage/types.js';
import { httpApi } from './runtime/api.js';
import { json } from './runtime/http.js';
import { relayEvent } from './runtime/relay.js';

export const handler = httpApi('publish', {
  'POST /channels/{channel}/messages': async ({ storage, params: { channel }, body, authorizeResource }) => {
    authorizeResource(channel!);
    const message = body.message as Json;
    const { id, publishedAt } = await storage.events.publish(channel!, message);
    // Stored first, so the event is safe whatever the relay meets; relayEvent never throws.
    await relayEvent(storage, { id, channel: channel!, message, publishedAt });
    return json(202, { id, publishedAt });
  },

  'GET /channels/{channel}/messages': async ({ storage, params: { channel }, query, authorizeResource }) => {
    authorizeResource(channel!);
    const limit = query.limit === undefined ? undefined : Number(query.limit);
    if (limit !== undefined && (limit < 1 || limit > MAX_LIST_LIMIT)) {
      throw new ValidationError(
        'query.limit',
        `must be an integer from 1 to ${MAX_LIST_LIMIT}, got ${query.limit}`,
      );
    }
    const messages = await storage.events.history(channel!, { after: query.after, limit });
    return json(200, { messages });
  },
});
