import type { ConnectionDriver, Driver } from '../../driver.js';
import type { JournalEntry } from '../journal.js';
import type { StoreDeps } from './deps.js';

const connSnapshot = async (d: Driver, id: string): Promise<JournalEntry[]> => [
  { t: 'conn', id, connection: (await d.connections.get(id)) ?? null },
];

export function hybridConnections({ router: { read }, write }: StoreDeps): ConnectionDriver {
  return {
    // Counted on the backend that takes the registration (the fallback's own count in an outage).
    register: (connection, maxPerToken) =>
      write(
        'pubsub',
        'connections.register',
        (d) => d.connections.register(connection, maxPerToken),
        (_d, c) => (c === 'full' ? [] : [{ t: 'conn', id: c.connectionId, connection: c }]),
        { undo: async (d, c) => (c === 'full' ? undefined : d.connections.remove(c.connectionId)) },
      ),
    get: (id) => read('pubsub', 'connections.get', (d) => d.connections.get(id)),
    subscribe: (id, channel, maxChannels) =>
      write(
        'pubsub',
        'connections.subscribe',
        (d) => d.connections.subscribe(id, channel, maxChannels),
        (d, outcome) => (outcome === 'subscribed' ? connSnapshot(d, id) : []),
      ),
    unsubscribe: (id, channel) =>
      write(
        'pubsub',
        'connections.unsubscribe',
        (d) => d.connections.unsubscribe(id, channel),
        (d) => connSnapshot(d, id),
      ),
    subscribers: (channel, after, limit) =>
      read('pubsub', 'connections.subscribers', (d) => d.connections.subscribers(channel, after, limit)),
    remove: (id) =>
      write(
        'pubsub',
        'connections.remove',
        (d) => d.connections.remove(id),
        () => [{ t: 'conn', id, connection: null }],
      ),
    byToken: (tokenId, after, limit) =>
      read('pubsub', 'connections.byToken', (d) => d.connections.byToken(tokenId, after, limit)),
    withExpiredToken: (limit) =>
      read('pubsub', 'connections.withExpiredToken', (d) => d.connections.withExpiredToken(limit)),
  };
}
