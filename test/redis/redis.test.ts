/**
 * Redis-specific guarantees the conformance suite cannot see: round trips per operation, every
 * key under the prefix (proved with an ACL user confined to it), typed errors when Redis is
 * unreachable, and the client options used for Lambda.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { resolveConfig, type StorageConfigInput } from '../../lib/config/index.js';
import { BackendUnavailableError, ConfigError } from '../../lib/errors.js';
import { createStorage, type Storage } from '../../lib/storage/index.js';
import { PAGE_SCAN_BUDGET } from '../../lib/storage/paging.js';
import { redisOptions } from '../../lib/storage/redis/client.js';
import { redisBackend } from '../support/backends.js';

const URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const backend = redisBackend();
const unavailable = await backend.available();
const skipped = unavailable ? ` — SKIPPED: ${unavailable}` : '';
if (unavailable && process.env.CI) throw new Error(`Redis is required under CI: ${unavailable}`);
if (unavailable)
  console.warn(`\n⚠ test/redis SKIPPED: ${unavailable} (install redis-server or set REDIS_URL)\n`);

describe.skipIf(unavailable !== undefined)(
  `redis backend specifics${unavailable ? ` — SKIPPED: ${unavailable}` : ''}`,
  () => {
    const prefix = `kst:test:rt${randomBytes(4).toString('hex')}:`;
    let admin: Redis;

    beforeAll(() => {
      admin = new Redis(URL);
    });
    afterAll(async () => {
      const keys = await admin.keys(`${prefix}*`);
      if (keys.length > 0) await admin.unlink(...keys);
      admin.disconnect();
    });

    describe('round trips', () => {
      /** Counts commands sent on the storage's command connection during `fn`. */
      async function commandsDuring(client: Redis, fn: () => Promise<unknown>): Promise<string[]> {
        const sent: string[] = [];
        const original = client.sendCommand.bind(client);
        client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
          sent.push(command.name.toLowerCase());
          return (original as (...a: unknown[]) => unknown)(command, ...rest);
        }) as typeof client.sendCommand;
        try {
          await fn();
        } finally {
          client.sendCommand = original;
        }
        return sent;
      }

      it('get, set, exists, getEntry, isClusterActive, send, receive and ack are one command each', async () => {
        const client = new Redis(URL);
        const storage = createStorage(
          { backend: 'redis', keyPrefix: prefix, redis: { url: URL } },
          { redis: { client } },
        );
        try {
          await storage.sessions.create({ clusterId: 'c1' });
          await storage.kv.set('warm', 1); // scripts are loaded on first use: measure warm calls
          await storage.kv.getEntry('warm');
          await storage.sessions.isClusterActive('c1');
          const warm = await storage.queues.send('q', 0);
          const [lease] = await storage.queues.receive('q');
          await storage.queues.ack('q', warm.id, lease!.receipt);

          expect(await commandsDuring(client, () => storage.kv.set('k', { a: 1 }, { ttl: 5 }))).toEqual([
            'set',
          ]);
          expect(await commandsDuring(client, () => storage.kv.get('k'))).toEqual(['get']);
          expect(await commandsDuring(client, () => storage.kv.exists('k'))).toEqual(['exists']);
          expect(await commandsDuring(client, () => storage.kv.getEntry('k'))).toEqual(['evalsha']);
          expect(await commandsDuring(client, () => storage.sessions.isClusterActive('c1'))).toEqual([
            'exists',
          ]);
          const sent = await storage.queues.send('q', { n: 1 });
          let received: Awaited<ReturnType<typeof storage.queues.receive>> = [];
          expect(
            await commandsDuring(client, async () => {
              received = await storage.queues.receive('q');
            }),
          ).toEqual(['evalsha']);
          expect(received[0]?.id).toBe(sent.id);
          expect(
            await commandsDuring(client, () => storage.queues.ack('q', sent.id, received[0]!.receipt)),
          ).toEqual(['evalsha']);
        } finally {
          await storage.close();
          client.disconnect();
        }
      });
    });

    it('a send pushes a wake-up token only while a long poll waits, and the waiting poll still wakes on it', async () => {
      const storage = createStorage({ backend: 'redis', keyPrefix: prefix, redis: { url: URL } });
      const notify = `${prefix}{q:wake}:notify`;
      try {
        // Nobody waits: a send leaves no token behind (no LPUSH + LTRIM for a wake-up nobody takes).
        await storage.queues.send('wake', { n: 1 });
        expect(await admin.llen(notify)).toBe(0);
        expect((await storage.queues.receive('wake')).map((m) => m.payload)).toEqual([{ n: 1 }]);

        // A long poll waits: the send wakes it long before its 10 s wait ends.
        const started = Date.now();
        const polled = storage.queues.receive('wake', { wait: 10 });
        for (let i = 0; i < 100 && (await admin.exists(`${notify}:w`)) === 0; i++)
          await new Promise((resolve) => setTimeout(resolve, 20));
        expect(await admin.get(`${notify}:w`)).toBe('1');
        await storage.queues.send('wake', { n: 2 });
        expect((await polled).map((m) => m.payload)).toEqual([{ n: 2 }]);
        expect(Date.now() - started).toBeLessThan(9000);
        // The poll that came back is no longer counted: the next send pushes nothing again.
        expect(await admin.exists(`${notify}:w`)).toBe(0);
        await storage.queues.send('wake', { n: 3 });
        expect(await admin.llen(notify)).toBe(0);
      } finally {
        await storage.close();
      }
    });

    it('connections: register, get, subscribe and subscribers are one command each', async () => {
      const client = new Redis(URL);
      const storage = createStorage(
        { backend: 'redis', keyPrefix: prefix, redis: { url: URL } },
        { redis: { client } },
      );
      const sent: string[] = [];
      const original = client.sendCommand.bind(client);
      client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
        sent.push(command.name.toLowerCase());
        return (original as (...a: unknown[]) => unknown)(command, ...rest);
      }) as typeof client.sendCommand;
      const during = async (fn: () => Promise<unknown>) => {
        sent.length = 0;
        await fn();
        return [...sent];
      };
      const register = (connectionId: string) =>
        storage.connections.register({
          connectionId,
          identity: 'i',
          tokenId: `t-${connectionId}`,
          scopes: ['admin'],
          resources: ['*'],
        });
      try {
        // Scripts are loaded on first use: measure warm calls.
        await register('warm');
        await storage.connections.subscribe('warm', 'ch');
        await storage.connections.get('warm');
        await storage.connections.subscribers('ch');
        await storage.connections.unsubscribe('warm', 'ch');
        await storage.connections.remove('warm');
        expect(await during(() => register('c1'))).toEqual(['evalsha']);
        expect(await during(() => storage.connections.subscribe('c1', 'ch'))).toEqual(['evalsha']);
        expect(await during(() => storage.connections.get('c1'))).toEqual(['evalsha']);
        expect(await during(() => storage.connections.subscribers('ch'))).toEqual(['evalsha']);
        expect(await during(() => storage.connections.unsubscribe('c1', 'ch'))).toEqual(['evalsha']);
        expect(await during(() => storage.connections.remove('c1'))).toEqual(['evalsha']);
      } finally {
        client.sendCommand = original;
        await storage.close();
        client.disconnect();
      }
    });

    describe('every key under the prefix', () => {
      const user = `kst-test-${randomBytes(4).toString('hex')}`;
      const password = randomBytes(12).toString('hex');
      const aclPrefix = `${prefix}acl:`;

      beforeAll(async () => {
        // Confined to the prefix: any key outside it, from a command or inside a script, is refused.
        await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, `~${aclPrefix}*`, '&*', '+@all');
      });
      afterAll(async () => {
        await admin.call('ACL', 'DELUSER', user);
      });

      // Redis checks ACL key patterns on commands run inside scripts too: a key built outside the
      // prefix anywhere would fail this test with NOPERM.
      it('runs every store under an ACL user limited to ~<prefix>*', async () => {
        const url = new globalThis.URL(URL);
        url.username = user;
        url.password = password;
        const storage = createStorage({
          backend: 'redis',
          keyPrefix: aclPrefix,
          redis: { url: url.toString() },
          events: { maxHistory: 5 },
        });
        try {
          await storage.kv.set('k', 1, { ttl: 10 });
          await storage.kv.setMany([{ key: 'a', value: 1 }]);
          expect(await storage.kv.getMany(['a', 'k'])).toEqual([1, 1]);
          await storage.kv.incr('n');
          await storage.kv.expire('k', null);
          const session = await storage.sessions.create({ clusterId: 'c', correlationId: 'r' });
          await storage.sessions.keepAlive(session.sessionId);
          expect(await storage.sessions.byCorrelation('r')).toHaveLength(1);
          await storage.sessions.end(session.sessionId);
          await storage.queues.send('q', 1, { dedupId: 'd', delay: 0 });
          const [m] = await storage.queues.receive('q', { visibilityTimeout: 5 });
          await storage.queues.nack('q', m!.id, m!.receipt);
          await storage.queues.stats('q');
          await storage.queues.deadLetters('q');
          expect(await storage.queues.receive('q', { wait: 0.05 })).toHaveLength(1);
          expect(await storage.queues.receive('q', { wait: 0.05 })).toHaveLength(0); // a blocking wait too
          await storage.events.publish('ch', { a: 1 });
          expect(await storage.events.history('ch')).toHaveLength(1);
          const token = await storage.tokens.issue({ identity: 'i', scopes: ['admin'] });
          expect(await storage.tokens.verify(token.token)).toBeDefined();
          await storage.tokens.list();
          await storage.tokens.revoke(token.id);
          await storage.audit.append({ identity: 'i', action: 'x' });
          expect(await storage.audit.query({ identity: 'i' })).toHaveLength(1);
          await storage.connections.register({
            connectionId: 'c',
            identity: 'i',
            tokenId: 't',
            scopes: ['events:subscribe'],
            resources: ['*'],
          });
          expect(await storage.connections.subscribe('c', 'ch')).toBe(true);
          expect((await storage.connections.get('c'))?.channels).toEqual(['ch']);
          expect((await storage.connections.subscribers('ch')).connectionIds).toEqual(['c']);
          expect(await storage.connections.unsubscribe('c', 'ch')).toBe(true);
          expect(await storage.connections.remove('c')).toBe(true);
          await storage.sweep();
        } finally {
          await storage.close();
        }
      });
    });

    describe('pages', () => {
      const storageUnder = (sub: string) => {
        const keyPrefix = `${prefix}${sub}:`;
        const storage = createStorage({ backend: 'redis', keyPrefix, redis: { url: URL } });
        return { storage, keyPrefix };
      };

      it('token and cluster pages rebuild their indexes when an older layout left them out', async () => {
        const { storage, keyPrefix } = storageUnder('rebuild');
        try {
          const issued = [];
          for (let i = 0; i < 5; i++)
            issued.push(await storage.tokens.issue({ identity: `t${i}`, scopes: ['kv:read'] }));
          for (const clusterId of ['c-3', 'c-1', 'c-2']) await storage.sessions.create({ clusterId });
          // As the layout before paged listings: no order, pos or names keys.
          await admin.del(`${keyPrefix}{t}:order`, `${keyPrefix}{t}:pos`, `${keyPrefix}{s}:names`);
          const page = await storage.tokens.page({ limit: 3 });
          expect(page.tokens).toHaveLength(3);
          const rest = await storage.tokens.page({ cursor: page.cursor! });
          expect([...page.tokens, ...rest.tokens].map((t) => t.id).sort()).toEqual(
            issued.map((t) => t.id).sort(),
          );
          expect(await admin.zcard(`${keyPrefix}{t}:order`)).toBe(5);
          expect(await storage.sessions.activeClusterPage()).toEqual({ clusters: ['c-1', 'c-2', 'c-3'] });
          expect(await admin.zcard(`${keyPrefix}{s}:names`)).toBe(3);
          // A token revoked by the older code (its order entry left behind) is dropped at the next page.
          await admin.hdel(`${keyPrefix}{t}:ids`, issued[0]!.id);
          expect((await storage.tokens.list()).map((t) => t.id)).not.toContain(issued[0]!.id);
          expect(await admin.zcard(`${keyPrefix}{t}:order`)).toBe(4);
        } finally {
          await storage.close();
        }
      });

      it(`a filtered page reads at most ${PAGE_SCAN_BUDGET} index entries, then answers what it found and a cursor`, async () => {
        const { storage } = storageUnder('budget');
        try {
          const other = Array.from({ length: PAGE_SCAN_BUDGET + 10 }, (_, i) => i);
          for (let i = 0; i < other.length; i += 200) {
            await Promise.all(
              other
                .slice(i, i + 200)
                .map((n) =>
                  storage.tokens.issue({ identity: `o${n}`, scopes: ['kv:read'], resources: [`other-${n}`] }),
                ),
            );
          }
          const wanted = await storage.tokens.issue({
            identity: 'w',
            scopes: ['kv:read'],
            resources: ['team-1'],
          });
          const first = await storage.tokens.page({ within: ['team-*'] });
          expect(first.tokens).toEqual([]);
          expect(first.cursor).toBeDefined();
          const second = await storage.tokens.page({ within: ['team-*'], cursor: first.cursor! });
          expect(second).toEqual({ tokens: [expect.objectContaining({ id: wanted.id })] });
        } finally {
          await storage.close();
        }
      });
    });

    describe('unreachable Redis', () => {
      it('fails fast with BackendUnavailableError and health reports down', async () => {
        // A port nothing listens on: connection refused at once.
        const storage = createStorage({
          backend: 'redis',
          redis: { url: 'redis://127.0.0.1:1', maxRetriesPerRequest: 1 },
        });
        try {
          await expect(storage.kv.get('k')).rejects.toBeInstanceOf(BackendUnavailableError);
          await expect(storage.queues.send('q', 1)).rejects.toMatchObject({
            code: 'unavailable',
            status: 503,
          });
          const health = await storage.health();
          expect(health.status).toBe('down');
          expect(health.checks.redis?.ok).toBe(false);
          // A subscription needs its own connection: it fails the same way instead of waiting forever.
          await expect(storage.events.subscribe('ch', () => {})).rejects.toBeInstanceOf(
            BackendUnavailableError,
          );
        } finally {
          await storage.close(); // resolves although nothing ever connected
        }
      });
    });
  },
);

describe('redis client options', () => {
  it('uses TLS for rediss:// and when asked, with credentials from the URL', () => {
    const tls = redisOptions(resolveConfig({ redis: { url: 'rediss://user:p%40ss@cache.example:6380/2' } }));
    expect(tls.url).toMatchObject({ host: 'cache.example', port: 6380, tls: true, db: 2 });
    expect(tls.options.tls).toEqual({ servername: 'cache.example' });
    expect(tls.options.username).toBe('user');
    expect(tls.options.password).toBe('p@ss');
    const forced = redisOptions(resolveConfig({ redis: { url: 'redis://h:1', tls: true } }));
    expect(forced.options.tls).toBeDefined();
    expect(redisOptions(resolveConfig({ redis: { url: 'redis://h:1' } })).options.tls).toBeUndefined();
  });

  it('bounds connects, commands and retries, and keeps connections alive', () => {
    const { options } = redisOptions(resolveConfig({ redis: { connectTimeout: 2, commandTimeout: 0.5 } }));
    expect(options.connectTimeout).toBe(2000);
    expect(options.commandTimeout).toBe(500);
    expect(options.maxRetriesPerRequest).toBe(2);
    expect(options.keepAlive).toBeGreaterThan(0);
    expect(options.retryStrategy?.(100)).toBeLessThanOrEqual(2000);
  });

  it('refuses a URL that is not redis:// or rediss:// with a config error naming the field', () => {
    expect(() => redisOptions(resolveConfig({ redis: { url: 'http://h' } }))).toThrow(ConfigError);
    expect(() => redisOptions(resolveConfig({ redis: { url: 'not a url' } }))).toThrow(/redis\.url/);
    expect(() => redisOptions(resolveConfig({ redis: { url: 'redis://:pa%zzword@h:1' } }))).toThrow(
      /redis\.url: the password/,
    );
  });
});

/**
 * A key prefix of its own and an ACL user confined to it, so a test can drop exactly its own
 * subscriber connections (other test files share this Redis) and clean up after itself.
 */
async function scratchRedis(label: string) {
  const admin = new Redis(URL);
  const keyPrefix = `kst:test:${label}${randomBytes(4).toString('hex')}:`;
  const user = `kst-test-${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, `~${keyPrefix}*`, '&*', '+@all');
  const userUrl = new globalThis.URL(URL);
  userUrl.username = user;
  userUrl.password = password;
  const opened: Storage[] = [];
  return {
    admin,
    keyPrefix,
    user,
    /** A storage on the prefix, connected as the confined user. */
    storage(overrides: StorageConfigInput = {}): Storage {
      const storage = createStorage({
        ...overrides,
        backend: 'redis',
        keyPrefix,
        redis: { url: userUrl.toString() },
      });
      opened.push(storage);
      return storage;
    },
    /** Drops the pub/sub connections of this test's storages only. */
    async killSubscribers(): Promise<void> {
      // After an earlier drop the subscriber may still be reconnecting: wait for it to be back.
      const mine = await vi.waitFor(
        async () => {
          const clients = String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
          const lines = clients.split('\n').filter((l) => l.includes(`user=${user} `));
          expect(lines.length, 'a subscriber connection to drop').toBeGreaterThan(0);
          return lines;
        },
        { timeout: 15_000 },
      );
      for (const line of mine) await admin.call('CLIENT', 'KILL', 'ID', /id=(\d+)/.exec(line)![1]!);
    },
    async cleanup(): Promise<void> {
      await Promise.all(opened.map((storage) => storage.close()));
      await admin.call('ACL', 'DELUSER', user);
      const keys = await admin.keys(`${keyPrefix}*`);
      if (keys.length > 0) await admin.unlink(...keys);
      admin.disconnect();
    },
  };
}

/** Waits (15 s at most) until `seen` holds at least `count` events; what they are is asserted after. */
async function untilSeen(seen: readonly unknown[], count: number): Promise<void> {
  await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(count), { timeout: 15_000 });
}

describe.skipIf(unavailable !== undefined)(
  `redis subscriptions survive dropped connections${skipped}`,
  () => {
    it('delivers every event once, in order, across a killed subscriber connection', async () => {
      const redis = await scratchRedis('sub');
      try {
        const publisher = redis.storage();
        const seen: string[] = [];
        await redis.storage().events.subscribe('ch', (event) => {
          seen.push(event.id);
        });
        const published: string[] = [];
        for (let i = 0; i < 200; i++) {
          published.push((await publisher.events.publish('ch', { i })).id);
          // Drop the subscriber midway, twice: events published while it reconnects are missed
          // live and must come from history.
          if (i === 50 || i === 120) await redis.killSubscribers();
        }
        await untilSeen(seen, published.length);
        expect(seen).toEqual(published);
      } finally {
        await redis.cleanup();
      }
    });

    it('events published while the subscriber reconnects arrive although nothing follows them', async () => {
      const redis = await scratchRedis('cu');
      try {
        const publisher = redis.storage();
        const seen: unknown[] = [];
        await redis.storage().events.subscribe('ch', (event) => {
          seen.push(event.message);
        });
        await redis.killSubscribers();
        for (const message of ['while-down-1', 'while-down-2', 'while-down-3']) {
          await publisher.events.publish('ch', message);
        }
        await untilSeen(seen, 3);
        expect(seen).toEqual(['while-down-1', 'while-down-2', 'while-down-3']);
      } finally {
        await redis.cleanup();
      }
    });

    it('a catch-up that fails is retried: events arrive once history can be read, with no later traffic', async () => {
      const redis = await scratchRedis('rc');
      const logged = console.error;
      console.error = () => {}; // the failed catch-ups are logged; expected here
      try {
        const publisher = redis.storage();
        const seen: unknown[] = [];
        await redis.storage().events.subscribe('ch', (event) => {
          seen.push(event.message);
        });
        await publisher.events.publish('ch', 'e1');
        // History reads are refused while the subscriber's live connection drops and returns.
        await redis.admin.call('ACL', 'SETUSER', redis.user, '-xrange');
        await redis.killSubscribers();
        await publisher.events.publish('ch', 'e2'); // publishing (XADD) is still allowed
        await publisher.events.publish('ch', 'e3');
        await new Promise((r) => setTimeout(r, 1000));
        await redis.admin.call('ACL', 'SETUSER', redis.user, '+xrange');
        await untilSeen(seen, 3);
        expect(seen).toEqual(['e1', 'e2', 'e3']);
      } finally {
        console.error = logged;
        await redis.cleanup();
      }
    });
  },
);

describe.skipIf(unavailable !== undefined)(`redis audit sweep${skipped}`, () => {
  it('trims the audit log itself by age, not only what queries answer', async () => {
    const redis = await scratchRedis('au');
    try {
      const storage = redis.storage({ audit: { maxAge: 0.2 } });
      for (let i = 0; i < 20; i++)
        await storage.audit.append({ identity: i % 2 ? 'alice' : 'bob', action: 'x' });
      await new Promise((r) => setTimeout(r, 400));
      const report = await storage.sweep();
      expect(report.audit).toBe(20);
      expect(await redis.admin.xlen(`${redis.keyPrefix}{a}:log`)).toBe(0);
      expect(await redis.admin.exists(`${redis.keyPrefix}{a}:i:alice`, `${redis.keyPrefix}{a}:i:bob`)).toBe(
        0,
      );
    } finally {
      await redis.cleanup();
    }
  });
});

describe.skipIf(unavailable !== undefined)(`redis connection registry${skipped}`, () => {
  it('every key is under one hash tag, {ws}, so the registry is one cluster slot', async () => {
    const redis = await scratchRedis('ws');
    try {
      const storage = redis.storage();
      for (const id of ['a', 'b{x}', '}c{']) {
        await storage.connections.register({
          connectionId: id,
          identity: 'i',
          tokenId: `t-${id}`,
          tokenExpiresAt: new Date(Date.now() + 600_000).toISOString(),
          scopes: ['admin'],
          resources: ['*'],
        });
        await storage.connections.subscribe(id, 'ch');
        await storage.connections.subscribe(id, `{other}:${id}`);
      }
      const keys = await redis.admin.keys(`${redis.keyPrefix}*`);
      expect(keys.length).toBeGreaterThanOrEqual(10);
      // The prefix holds no brace, so the first {…} of every key is {ws}: one slot.
      expect(redis.keyPrefix).not.toMatch(/[{}]/);
      for (const key of keys) expect(key.startsWith(`${redis.keyPrefix}{ws}:`), key).toBe(true);
    } finally {
      await redis.cleanup();
    }
  });

  it('keys carry TTLs, Redis drops a dead connection itself, and the sweep leaves nothing behind', async () => {
    const redis = await scratchRedis('wt');
    try {
      const storage = redis.storage();
      const base = `${redis.keyPrefix}{ws}:`;
      const register = (connectionId: string, ttl: number) =>
        storage.connections.register({
          connectionId,
          identity: 'i',
          tokenId: `t-${connectionId}`,
          tokenExpiresAt: new Date(Date.now() + 600_000).toISOString(),
          scopes: ['admin'],
          resources: ['*'],
          ttl,
        });
      const short = await register('short', 1);
      await register('long', 600);
      for (const ch of ['shared', 'only-short']) await storage.connections.subscribe('short', ch);
      await storage.connections.subscribe('long', 'shared');

      // Every key expires on its own: nothing is left for ever if no sweep runs.
      const keys = await redis.admin.keys(`${redis.keyPrefix}*`);
      for (const key of keys) expect(await redis.admin.pttl(key), key).toBeGreaterThan(0);
      expect(await redis.admin.pttl(`${base}conn:short`)).toBeLessThanOrEqual(1000);

      await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(short.expiresAt) - Date.now()) + 250));
      expect(await redis.admin.exists(`${base}conn:short`)).toBe(0); // dropped by Redis itself
      const report = await storage.sweep();
      expect(report.connections).toBe(1);
      expect(await redis.admin.exists(`${base}chans:short`, `${base}subs:only-short`)).toBe(0);
      expect(await redis.admin.zrange(`${base}subs:shared`, 0, -1)).toEqual(['long']);
      expect(await redis.admin.zrange(`${base}conns`, 0, -1)).toEqual(['long']);

      expect(await storage.connections.remove('long')).toBe(true);
      expect(await redis.admin.keys(`${base}*`)).toEqual([]);
    } finally {
      await redis.cleanup();
    }
  });
});

describe.skipIf(unavailable !== undefined)(`redis connection limits${skipped}`, () => {
  it('redis.maxConnections caps the connections long polls open; capped waits poll and still get their messages', async () => {
    const name = `kst-cap-${randomBytes(4).toString('hex')}`;
    const prefix = `kst:test:cap${randomBytes(4).toString('hex')}:`;
    const client = new Redis(URL, { connectionName: name });
    const admin = new Redis(URL);
    const storage = createStorage(
      { backend: 'redis', keyPrefix: prefix, redis: { url: URL, maxConnections: 3 } },
      { redis: { client } },
    );
    const ours = async () =>
      String(await admin.call('CLIENT', 'LIST'))
        .split('\n')
        .filter((line) => line.includes(` name=${name} `)).length;
    try {
      const queues = ['a', 'b', 'c', 'd', 'e'];
      const waits = queues.map((queue) => storage.queues.receive(queue, { wait: 15 }));
      let most = 0;
      for (let i = 0; i < 10; i++) {
        most = Math.max(most, await ours());
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      for (const queue of queues) await storage.queues.send(queue, queue);
      const received = await Promise.all(waits);
      expect(received.map((messages) => messages.map((m) => m.payload))).toEqual(
        queues.map((queue) => [queue]),
      );
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(3);
    } finally {
      await storage.close();
      client.disconnect();
      const keys = await admin.keys(`${prefix}*`);
      if (keys.length > 0) await admin.unlink(...keys);
      admin.disconnect();
    }
  });
});
