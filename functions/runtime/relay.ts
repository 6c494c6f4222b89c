/**
 * The WebSocket relay: a stored event goes out as a `message` frame (docs/api.md) to every live
 * connection subscribed to its channel, through API Gateway's `postToConnection`. Few
 * subscribers are served in the publishing invocation; many are handed to the `fanout` function
 * (invoked asynchronously) so a publish answers without waiting for them. A connection API
 * Gateway answers 410 Gone for is closed: it is removed from the registry with its
 * subscriptions.
 */
import { MAX_MESSAGE_BYTES } from '../../lib/limits.js';
import type { Json, PublishedEvent, Storage } from '../../lib/storage/types.js';
import { lambdaClient, managementApiModule, managementClient, websocketEndpoint } from './aws.js';
import type { ApiErrorCode } from './http.js';
import { logger } from './logger.js';
import { emitMetric } from './metrics.js';
import type { QueueServerFrame } from './push.js';
import { getStorageConfig } from './storage.js';

/** Posts in flight at once per invocation: enough to hide latency, few enough not to be throttled. */
export const POST_CONCURRENCY = 16;
const PAGE_SIZE = 1000;

/** The frames the server sends (docs/api.md, WebSocket). */
export type ServerFrame =
  | { type: 'subscribed'; channel: string }
  | { type: 'unsubscribed'; channel: string }
  | { type: 'message'; channel: string; id: string; message: Json; publishedAt: string }
  | { type: 'pong' }
  /** `queue` and `id` repeat those of the queue frame it answers (see `queueEcho`). */
  | { type: 'error'; code: ApiErrorCode; message: string; queue?: string; id?: string }
  | QueueServerFrame;

export interface RelayOptions {
  /** The management endpoint; default `websocketEndpoint()` (the environment). */
  endpoint?: string;
  /** The connection that published, if any: never removed from the registry by this relay. */
  sender?: string;
}

export interface DeliveryCounts {
  subscribers: number;
  delivered: number;
  /** Connections API Gateway answered 410 Gone for (closed; removed from the registry). */
  gone: number;
  failed: number;
}

export type PostResult = 'delivered' | 'gone' | 'failed';

/** `gone`: API Gateway no longer knew the connection (410), so it is closed too. */
export type CloseResult = 'closed' | 'gone' | 'failed';

/** The fan-out function's input. */
export interface FanoutInput {
  channel: string;
  event: PublishedEvent;
}

/**
 * Relays a stored event to its channel's subscribers. Never throws: a relay that fails is
 * logged, and the event stays in the channel's history for subscribers to catch up from.
 */
export async function relayEvent(
  storage: Storage,
  event: PublishedEvent,
  options: RelayOptions = {},
): Promise<void> {
  try {
    const endpoint = options.endpoint ?? websocketEndpoint();
    if (!endpoint) {
      logger.error('event not relayed: no WebSocket endpoint (set WEBSOCKET_ENDPOINT)', {
        channel: event.channel,
        id: event.id,
      });
      return;
    }
    const threshold = fanoutThreshold();

    // One page more than the threshold tells whether this invocation serves them all.
    const connectionIds: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await storage.connections.subscribers(event.channel, {
        ...(cursor === undefined ? {} : { cursor }),
        limit: Math.min(PAGE_SIZE, threshold + 1 - connectionIds.length),
      });
      connectionIds.push(...page.connectionIds);
      cursor = page.cursor;
    } while (cursor !== undefined && connectionIds.length <= threshold);

    if (connectionIds.length === 0) return;
    if (connectionIds.length > threshold) {
      if (await invokeFanout(event)) return;
      // No fan-out function to hand it to: serve every subscriber here rather than none.
      const counts = await fanOut(storage, event, options);
      logger.info('event relayed', { channel: event.channel, id: event.id, ...counts });
      return;
    }

    const counts = await deliver(storage, endpoint, connectionIds, messageFrame(event), options.sender);
    logger.info('event relayed', { channel: event.channel, id: event.id, ...counts });
  } catch (error) {
    logger.error('event not relayed', { channel: event.channel, id: event.id, error });
  }
}

/**
 * Delivers an event to every subscriber of its channel, page by page (the fan-out function's
 * work, and the relay's fallback). Throws only when the registry cannot be read.
 */
export async function fanOut(
  storage: Storage,
  event: PublishedEvent,
  options: RelayOptions = {},
): Promise<DeliveryCounts> {
  const endpoint = options.endpoint ?? websocketEndpoint();
  if (!endpoint) throw new Error('no WebSocket endpoint: set WEBSOCKET_ENDPOINT');
  const frame = messageFrame(event);
  const total: DeliveryCounts = { subscribers: 0, delivered: 0, gone: 0, failed: 0 };
  const gone: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await storage.connections.subscribers(event.channel, {
      ...(cursor === undefined ? {} : { cursor }),
      limit: PAGE_SIZE,
    });
    cursor = page.cursor;
    await eachLimited(page.connectionIds, POST_CONCURRENCY, async (connectionId) => {
      total.subscribers += 1;
      const result = await postFrame(endpoint, connectionId, frame);
      if (result === 'gone') gone.push(connectionId);
      else total[result] += 1;
    });
  } while (cursor !== undefined);
  // Removed after paging, so the registry's cursor never walks over rows that vanished under it.
  total.gone = await removeGone(storage, gone, options.sender);
  countFailures(total);
  return total;
}

/** Posts `frame` to each connection and removes those that are gone. */
export async function deliver(
  storage: Storage,
  endpoint: string,
  connectionIds: readonly string[],
  frame: Uint8Array,
  sender?: string,
): Promise<DeliveryCounts> {
  const counts: DeliveryCounts = { subscribers: connectionIds.length, delivered: 0, gone: 0, failed: 0 };
  const gone: string[] = [];
  await eachLimited(connectionIds, POST_CONCURRENCY, async (connectionId) => {
    const result = await postFrame(endpoint, connectionId, frame);
    if (result === 'gone') gone.push(connectionId);
    else counts[result] += 1;
  });
  counts.gone = await removeGone(storage, gone, sender);
  countFailures(counts);
  return counts;
}

/** Frames not delivered for another reason than a closed connection: `RelayFailures`. */
function countFailures(counts: DeliveryCounts): void {
  if (counts.failed > 0)
    emitMetric({ name: 'RelayFailures', value: counts.failed, unit: 'Count', dimensions: {} });
}

/** Posts one frame to one connection; never throws. */
export async function postFrame(
  endpoint: string,
  connectionId: string,
  frame: Uint8Array | ServerFrame,
): Promise<PostResult> {
  const data = frame instanceof Uint8Array ? frame : encode(frame);
  try {
    const { PostToConnectionCommand } = await managementApiModule();
    await (await managementClient(endpoint)).send(
      new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }),
    );
    return 'delivered';
  } catch (error) {
    if (isGone(error)) return 'gone';
    logger.warn('postToConnection failed', { connectionId, error });
    return 'failed';
  }
}

/** Closes one connection at API Gateway (`DELETE /@connections/{id}`); never throws. */
export async function closeSocket(endpoint: string, connectionId: string): Promise<CloseResult> {
  try {
    const { DeleteConnectionCommand } = await managementApiModule();
    await (await managementClient(endpoint)).send(
      new DeleteConnectionCommand({ ConnectionId: connectionId }),
    );
    return 'closed';
  } catch (error) {
    if (isGone(error)) return 'gone';
    logger.warn('deleteConnection failed', { connectionId, error });
    return 'failed';
  }
}

/**
 * The `message` frame of an event, encoded. One that would exceed API Gateway's message limit
 * cannot be sent: subscribers get an error frame naming the event instead, so they know to read
 * it from the channel's history rather than miss it silently.
 */
export function messageFrame(event: PublishedEvent): Uint8Array {
  const frame = encode({
    type: 'message',
    channel: event.channel,
    id: event.id,
    message: event.message,
    publishedAt: event.publishedAt,
  });
  if (frame.byteLength <= MAX_MESSAGE_BYTES) return frame;
  return encode({
    type: 'error',
    code: 'payload_too_large',
    message:
      `message ${event.id} on channel ${JSON.stringify(event.channel)} is ${frame.byteLength} bytes as a frame, ` +
      `over the WebSocket limit of ${MAX_MESSAGE_BYTES}; read it with GET /channels/{channel}/messages`,
  });
}

export function encode(frame: ServerFrame): Uint8Array {
  return Buffer.from(JSON.stringify(frame), 'utf8');
}

/**
 * Most subscribers served by the publishing invocation itself: `websocket.fanoutThreshold`
 * (config file, or `FANOUT_THRESHOLD`), validated with the rest of the configuration.
 */
export function fanoutThreshold(): number {
  return getStorageConfig().websocket.fanoutThreshold;
}

/** Hands the event to the fan-out function; answers false when that could not be done. */
async function invokeFanout(event: PublishedEvent): Promise<boolean> {
  const functionName = process.env.FANOUT_FUNCTION_NAME;
  if (!functionName) {
    logger.warn('FANOUT_FUNCTION_NAME is not set: relaying to every subscriber in this invocation', {
      channel: event.channel,
      id: event.id,
    });
    return false;
  }
  const input: FanoutInput = { channel: event.channel, event };
  try {
    const { InvokeCommand } = await import('@aws-sdk/client-lambda');
    await (await lambdaClient()).send(
      new InvokeCommand({
        FunctionName: functionName,
        InvocationType: 'Event',
        Payload: Buffer.from(JSON.stringify(input), 'utf8'),
      }),
    );
    logger.info('event handed to the fan-out function', {
      channel: event.channel,
      id: event.id,
      functionName,
    });
    return true;
  } catch (error) {
    logger.error('fan-out function could not be invoked: relaying in this invocation', {
      channel: event.channel,
      id: event.id,
      functionName,
      error,
    });
    return false;
  }
}

async function removeGone(
  storage: Storage,
  connectionIds: readonly string[],
  sender?: string,
): Promise<number> {
  for (const connectionId of connectionIds) {
    // The sender has just spoken through its connection; a 410 for it is API Gateway's race, and
    // its own $disconnect removes it if it really is gone.
    if (connectionId === sender) continue;
    try {
      await storage.connections.remove(connectionId);
      logger.info('stale connection removed (410 Gone)', { connectionId });
    } catch (error) {
      logger.warn('stale connection could not be removed', { connectionId, error });
    }
  }
  return connectionIds.length;
}

function isGone(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, $metadata } = error as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  return name === 'GoneException' || $metadata?.httpStatusCode === 410;
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
