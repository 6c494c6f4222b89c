/** Events: checks in front of the driver's, and subscriptions delivered in order without gaps. */
import { ValidationError } from '../../errors.js';
import { EVENT_ID_DIGITS, MAX_LIST_LIMIT } from '../../limits.js';
import type { EventDriver } from '../driver.js';
import { checkListLimit } from '../paging.js';
import type { EventHandler, EventStore, PublishedEvent } from '../types.js';
import { checkName, checkOptions, describe, EVENT_ID_PATTERN, serializeJson } from '../validate.js';

export interface EventStoreOptions {
  maxBytes: number;
  /** Events a channel retains (`events.maxHistory`, per channel). */
  historyLimit: (channel: string) => number;
}

/**
 * The event store, and the close of its open subscriptions (closing the storage ends them too:
 * their catch-ups would otherwise retry for ever).
 */
export function createEventStore(
  driver: EventDriver,
  { maxBytes, historyLimit }: EventStoreOptions,
): { events: EventStore; closeSubscriptions: () => Promise<void> } {
  const subscriptions = new Set<() => Promise<void>>();
  const events: EventStore = {
    async publish(channel, message) {
      checkName('channel', channel);
      const json = serializeJson('message', message, maxBytes);
      return driver.publish(channel, json, historyLimit(channel));
    },
    async history(channel, options) {
      checkName('channel', channel);
      const checked = checkOptions('options', options, ['after', 'limit']);
      const after = checked.after === undefined ? 0 : parseEventId('options.after', checked.after);
      return driver.history(channel, after, checkListLimit('options.limit', checked.limit));
    },
    async subscribe(channel, handler, options) {
      checkName('channel', channel);
      if (typeof handler !== 'function')
        throw new ValidationError('handler', `expected a function, got ${describe(handler)}`);
      const checked = checkOptions('options', options, ['after']);
      const after = checked.after === undefined ? undefined : parseEventId('options.after', checked.after);
      const subscription = await subscribeInOrder(driver, channel, handler, after);
      const unsubscribe = async () => {
        subscriptions.delete(unsubscribe);
        await subscription();
      };
      subscriptions.add(unsubscribe);
      return unsubscribe;
    },
  };
  const closeSubscriptions = async () => {
    await Promise.allSettled([...subscriptions].map((unsubscribe) => unsubscribe()));
  };
  return { events, closeSubscriptions };
}

const EVENT_ID = new RegExp(EVENT_ID_PATTERN);
function parseEventId(field: string, value: unknown): number {
  if (typeof value !== 'string' || !EVENT_ID.test(value)) {
    throw new ValidationError(field, `expected an event id (a string of up to ${EVENT_ID_DIGITS} digits)`);
  }
  return Number(value);
}

/**
 * Delivers a channel's events to `handler` in id order, each once, with no gap: live events
 * from the driver pass through a cursor; a jump in sequence numbers or a reconnect is filled
 * from history. Handler calls are serialised; a handler that throws does not end the subscription.
 */
async function subscribeInOrder(
  driver: EventDriver,
  channel: string,
  handler: EventHandler,
  after: number | undefined,
): Promise<() => Promise<void>> {
  // The last sequence delivered. Without `after`, everything published from this call on is
  // delivered: the cursor starts at the channel's current end.
  let cursor = after ?? (await driver.last(channel));
  let closed = false;
  const log = (message: string, error: unknown) =>
    console.error(JSON.stringify({ level: 'ERROR', message, channel, error: String(error) }));

  /** Hands the event to the handler unless delivered already; a promise only while the handler's runs. */
  const deliver = (event: PublishedEvent): Promise<void> | undefined => {
    if (closed) return;
    const seq = Number(event.id);
    if (seq <= cursor) return;
    cursor = seq;
    try {
      const result = handler(event) as unknown;
      if (typeof (result as PromiseLike<void> | undefined)?.then === 'function') {
        return Promise.resolve(result as PromiseLike<void>).then(undefined, (error) =>
          log('event handler failed', error),
        );
      }
    } catch (error) {
      log('event handler failed', error);
    }
  };
  const catchUp = async (upTo: number) => {
    while (!closed && cursor < upTo) {
      const page = await driver.history(channel, cursor, MAX_LIST_LIMIT);
      const before = cursor;
      for (const event of page) await deliver(event);
      if (page.length === 0 || cursor === before) break;
    }
  };
  /** Catch-up that a failed history read does not end: retried with back-off until it succeeds or the subscription closes. */
  const catchUpReliably = async (upTo: number) => {
    for (let delayMs = 100; !closed; delayMs = Math.min(delayMs * 2, 5000)) {
      try {
        return await catchUp(upTo);
      } catch (error) {
        // Even a refusal (missing permissions) is retried: an operator may fix it, and the
        // subscription then catches up. Closing the subscription or the storage ends the loop.
        log('subscription catch-up failed; retrying', error);
        await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
      }
    }
  };

  // Tasks run one at a time in arrival order. A task that finishes at once (an event next in
  // order, a handler that returns no promise) runs in the driver's callback with no promise of its
  // own; one that returns a promise holds the tasks behind it until it settles.
  type Task = () => Promise<void> | undefined;
  const tasks: Task[] = [];
  let running = false;
  const drain = (): void => {
    running = true;
    for (let task = tasks.shift(); task; task = tasks.shift()) {
      let pending: Promise<void> | undefined;
      try {
        pending = task();
      } catch (error) {
        log('subscription task failed', error);
      }
      if (pending) {
        pending.then(drain, (error) => {
          log('subscription task failed', error);
          drain();
        });
        return;
      }
    }
    running = false;
  };
  const enqueue = (task: Task) => {
    tasks.push(task);
    if (!running) drain();
  };
  const onLive = (event: PublishedEvent) =>
    enqueue(() => {
      const seq = Number(event.id);
      if (seq > cursor + 1) return catchUpReliably(seq - 1).then(() => deliver(event));
      return deliver(event);
    });

  // Live events wait behind the first catch-up: events published before the subscription was
  // confirmed (or after `after`) come from history. If it fails, subscribe fails.
  running = true;
  const unsubscribe = await driver.subscribe(channel, onLive, () =>
    enqueue(() => catchUpReliably(Number.MAX_SAFE_INTEGER)),
  );
  try {
    await catchUp(Number.MAX_SAFE_INTEGER);
  } catch (error) {
    closed = true;
    await unsubscribe().catch(() => {});
    throw error;
  }
  drain();
  return async () => {
    closed = true;
    await unsubscribe();
  };
}
