import type { StorageClient } from './client.js';
import type { QueueMessage } from './types.js';

export interface ExecutorOptions {
  client: StorageClient;
  queue: string;
  /** Runs one message; resolving acks it, throwing nacks it. */
  handler: (message: QueueMessage, signal: AbortSignal) => Promise<void> | void;
  /** Ends the loop: the long poll in progress is abandoned (a message it leased returns after its visibility timeout). */
  signal: AbortSignal;
  /** Long-poll wait per receive, seconds (default 20, the API's largest). */
  wait?: number;
  /** Lease per message, seconds (default: the API's, 30). */
  visibilityTimeout?: number;
  /** Messages leased per receive (default 1). */
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
  const { client, queue, handler, signal, onError = () => {} } = options;
  const receive = {
    wait: options.wait ?? 20,
    max: options.max ?? 1,
    ...(options.visibilityTimeout === undefined ? {} : { visibilityTimeout: options.visibilityTimeout }),
  };
  const nackDelay = options.nackDelay ?? 5;
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
    for (const message of messages) {
      try {
        await handler(message, signal);
      } catch (error) {
        onError(error, message);
        await client.queues.nack(queue, message, nackDelay).catch((nackError) => onError(nackError, message));
        continue;
      }
      await client.queues.ack(queue, message).catch((ackError) => onError(ackError, message));
    }
  }
}
