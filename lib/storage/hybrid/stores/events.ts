import type { Driver, EventDriver } from '../../driver.js';
import { primaryOf } from '../context.js';
import type { StoreDeps } from './deps.js';

/**
 * Events. Reads and subscriptions stay on the primary: ids are one sequence per channel, and
 * mixing the fallback's sequence in would make a subscriber's cursor skip events.
 */
export function hybridEvents({ ctx, router, write }: StoreDeps): EventDriver {
  const onPrimary = async <T>(op: string, run: (d: Driver) => Promise<T>) => {
    router.touch();
    const member = primaryOf(ctx, 'pubsub');
    const started = performance.now();
    const value = await run(member.driver);
    router.record('pubsub', member, 'primary', op, started);
    return value;
  };
  return {
    publish: (channel, json, maxHistory) =>
      write(
        'pubsub',
        'events.publish',
        (d) => d.events.publish(channel, json, maxHistory),
        () => [{ t: 'event', channel, json, maxHistory }],
        { mirror: false, ordered: false },
      ),
    last: (channel) => onPrimary('events.last', (d) => d.events.last(channel)),
    history: (channel, after, limit) =>
      onPrimary('events.history', (d) => d.events.history(channel, after, limit)),
    subscribe: (channel, onEvent, onReconnect) =>
      onPrimary('events.subscribe', (d) => d.events.subscribe(channel, onEvent, onReconnect)),
  };
}
