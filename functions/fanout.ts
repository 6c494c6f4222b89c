/**
 * The asynchronous fan-out: relays one stored event to every subscriber of its channel, page by
 * page. The publishing invocation hands it over (see `relayEvent`) when a channel has more
 * subscribers than `FANOUT_THRESHOLD`, so a publish answers without waiting for them.
 *
 * Input: `{"channel", "event": {"id","channel","message","publishedAt"}}`. Input that is not
 * that is logged and dropped (a retry would meet it again); a registry that cannot be read
 * throws, so Lambda retries the asynchronous invocation.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import type { Json, PublishedEvent } from '../lib/storage/types.js';
import { checkName, isPlainObject } from '../lib/storage/validate.js';
import { logger } from './runtime/logger.js';
import { runtime } from './runtime/middleware.js';
import { type DeliveryCounts, type FanoutInput, fanOut } from './runtime/relay.js';
import { getStorage } from './runtime/storage.js';

export interface FanoutResult extends DeliveryCounts {
  channel?: string;
  id?: string;
  durationMs: number;
  /** Why the input was dropped. */
  error?: string;
}

const fanout = async (input: unknown): Promise<FanoutResult> => {
  const started = performance.now();
  let event: PublishedEvent;
  try {
    event = parseInput(input);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    logger.error('fan-out input refused', { reason });
    return { subscribers: 0, delivered: 0, gone: 0, failed: 0, durationMs: 0, error: reason };
  }
  const counts = await fanOut(getStorage(), event);
  const durationMs = Math.round(performance.now() - started);
  logger.info('fan-out done', { channel: event.channel, id: event.id, ...counts, durationMs });
  return { channel: event.channel, id: event.id, ...counts, durationMs };
};

function parseInput(input: unknown): PublishedEvent {
  if (!isPlainObject(input)) throw new Error('input must be an object {channel, event}');
  const unknown = Object.keys(input).filter((key) => key !== 'channel' && key !== 'event');
  if (unknown.length > 0) throw new Error(`unknown fields: ${unknown.join(', ')}`);
  const { channel, event } = input as Partial<FanoutInput> & Record<string, unknown>;
  checkName('channel', channel);
  if (!isPlainObject(event)) throw new Error('event must be an object {id, channel, message, publishedAt}');
  const { id, message, publishedAt } = event;
  if (event.channel !== channel) throw new Error('event.channel must equal channel');
  if (typeof id !== 'string' || id === '') throw new Error('event.id must be a non-empty string');
  if (typeof publishedAt !== 'string' || Number.isNaN(Date.parse(publishedAt))) {
    throw new Error('event.publishedAt must be an ISO-8601 time');
  }
  if (!('message' in event)) throw new Error('event.message is missing');
  return { id, channel: channel as string, message: message as Json, publishedAt };
}

// Not an API Gateway event: the Lambda context is all there is to log with (no correlation id).
const logging = injectLambdaContext(logger, { resetKeys: true }) as MiddlewareObj<unknown, FanoutResult>;

export const handler = middy(fanout).use(runtime<unknown, FanoutResult>('fanout')).use(logging);
