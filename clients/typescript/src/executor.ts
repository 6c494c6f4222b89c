import type { StorageClient } from './client.js';
import type { Delivery, PushReceiver } from './receive.js';
import type { QueueMessage } from './types.js';

export interface ExecutorOptions {
  client: StorageClient;
  queue: string;
  /** Runs one message; resolving acks it, throwing nacks it. */
  handler: (message: QueueMessage, signal: AbortSignal) => Promise<void> | void;
  /** Ends the loop: the long poll in progress is abandoned (a message it leased returns after its visibility timeout). */
  signal: AbortSignal;
  /**
   * How messages arrive: `push` over the WebSocket (no function runs while the executor waits),
   * `poll` with HTTP long polls, or `auto` (the default): push when the client has a `wsUrl`,
   * falling back to long polls when the socket cannot receive (refused, or unreachable).
   */
  delivery?: 'push' | 'poll' | 'auto';
  /** Long-poll wait per receive, seconds (default 20, the API's largest). */
  wait?: number;
  /** Lease per message, seconds (default: the API's, 30). */
  visibilityTimeout?: number;
  /** Messages leased per receive, or held unacknowledged at a time by push (default 1). */
  max?: number;
  /** Seconds before a failed message is delivered again (default 5). */
  nackDelay?: number;
  /** Told of each handler failure and of each failed receive, ack or nack; the loop goes on. */
  onError?: (error: unknown, message?: QueueMessage) => void;
}

/** Pause after a failed receive, so a service that is down is not polled in a tight loop. */
const RECEIVE_FAILURE_PAUSE_MS = 1000;

/**
 * Receives from `queue` until `signal` aborts: each message is handed to `handler`, acked when
 * it succeeds and nacked with `nackDelay` when it throws. Resolves once stopped.
 */
export async function runExecutor(options: ExecutorOptions): Promise<void> {
  const delivery = options.delivery ?? 'auto';
  if (delivery === 'push' || (delivery === 'auto' && options.client.hasWebSocket)) {
    try {
      await pushLoop(options);
      return;
    } catch (error) {
      if (delivery === 'push' || options.signal.aborted) throw error;
      options.onError?.(error);
    }
  }
  await pollLoop(options);
}

/** Push: one receiver for the whole run; rejects when the receiver fails for good. */
async function pushLoop(options: ExecutorOptions): Promise<void> {
  const { client, queue, signal } = options;
  if (signal.aborted) return;
  const receiver = client.receive(queue, {
    max: options.max ?? 1,
    ...(options.visibilityTimeout === undefined ? {} : { visibilityTimeout: options.visibilityTimeout }),
  });
  // A message being handled is acked (or nacked) before the receiver closes; closing gives back the rest.
  let handling = false;
  const stop = () => {
    if (!handling) receiver.close();
  };
  signal.addEventListener('abort', stop, { once: true });
  try {
    await receiver.ready;
    for await (const message of receiver) {
      handling = true;
      await handle(options, message, receiver);
      handling = false;
      if (signal.aborted) break;
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  } finally {
    signal.removeEventListener('abort', stop);
    receiver.close();
  }
}

/** Long polls over HTTP until the signal aborts. */
async function pollLoop(options: ExecutorOptions): Promise<void> {
  const { client, queue, signal, onError = () => {} } = options;
  const receive = {
    wait: options.wait ?? 20,
    max: options.max ?? 1,
    ...(options.visibilityTimeout === undefined ? {} : { visibilityTimeout: options.visibilityTimeout }),
  };
  while (!signal.aborted) {
    let messages: QueueMessage[];
    try {
      messages = await client.queues.receive(queue, receive, signal);
    } catch (error) {
      if (signal.aborted) return;
      onError(error);
      await new Promise((resolve) => setTimeout(resolve, RECEIVE_FAILURE_PAUSE_MS));
      continue;
    }
    for (const message of messages) await handle(options, message);
  }
}

/** Runs the handler on one message, then acks or nacks it (over the socket it came on, if any). */
async function handle(options: ExecutorOptions, message: QueueMessage | Delivery, receiver?: PushReceiver) {
  const { client, queue, handler, signal, onError = () => {} } = options;
  const settled = receiver ?? {
    ack: (m: QueueMessage) => client.queues.ack(queue, m),
    nack: (m: QueueMessage, delay?: number) => client.queues.nack(queue, m, delay),
  };
  try {
    await handler(message, signal);
  } catch (error) {
    onError(error, message);
    await settled.nack(message, options.nackDelay ?? 5).catch((nackError) => onError(nackError, message));
    return;
  }
  await settled.ack(message).catch((ackError) => onError(ackError, message));
}
