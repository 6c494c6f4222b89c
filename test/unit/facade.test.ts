/**
 * The shared facade's own duties, on a memory driver whose events can be made to fail.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../lib/config/index.js';
import { BackendUnavailableError, ConflictError, ValidationError } from '../../lib/errors.js';
import type { ConnectionDriver, Driver, EventDriver } from '../../lib/storage/driver.js';
import { createFacade } from '../../lib/storage/facade.js';
import { createMemoryDriver } from '../../lib/storage/memory/index.js';
import { sleep } from '../support/helpers.js';

/** A memory driver whose history reads fail while `failing` is set, counting them; `reconnect()` plays a dropped connection coming back. */
function flakyDriver() {
  const config = resolveConfig({});
  const base = createMemoryDriver(config);
  const state = { failing: false, historyReads: 0, reconnect: () => {} };
  const events: EventDriver = {
    ...base.events,
    async history(channel, after, limit) {
      state.historyReads++;
      if (state.failing) throw new BackendUnavailableError('memory', 'history unavailable');
      return base.events.history(channel, after, limit);
    },
    async subscribe(channel, onEvent, onReconnect) {
      state.reconnect = onReconnect;
      return base.events.subscribe(channel, onEvent, onReconnect);
    },
  };
  const driver: Driver = { ...base, events };
  return { storage: createFacade(driver, config), state };
}

describe('facade', () => {
  it('closing the storage ends its subscriptions: a failing catch-up stops retrying', async () => {
    const { storage, state } = flakyDriver();
    const seen: unknown[] = [];
    await storage.events.subscribe('ch', (e) => {
      seen.push(e.message);
    });
    const errors: string[] = [];
    const original = console.error;
    console.error = (line: string) => errors.push(line);
    try {
      state.failing = true;
      state.reconnect(); // a catch-up starts, fails, and retries with back-off
      await sleep(150);
      await storage.close();
      const readsAtClose = state.historyReads;
      await sleep(800);
      expect(state.historyReads).toBe(readsAtClose);
      expect(seen).toEqual([]);
    } finally {
      console.error = original;
    }
    expect(errors.some((line) => line.includes('catch-up failed'))).toBe(true);
  });
});

describe('facade: connections', () => {
  /** A memory driver whose connection driver records what it is asked and answers what it is told. */
  function stubbed(overrides: Partial<ConnectionDriver>) {
    const config = resolveConfig({});
    const base = createMemoryDriver(config);
    const driver: Driver = { ...base, connections: { ...base.connections, ...overrides } };
    return createFacade(driver, config);
  }

  it("maps the driver's outcomes: full → ConflictError, unknown → false, subscribed → true", async () => {
    let outcome: 'subscribed' | 'unknown' | 'full' = 'full';
    let max = 0;
    const storage = stubbed({
      async subscribe(_id, _channel, maxChannels) {
        max = maxChannels;
        return outcome;
      },
    });
    await expect(storage.connections.subscribe('c', 'ch')).rejects.toBeInstanceOf(ConflictError);
    expect(max).toBe(100);
    outcome = 'unknown';
    expect(await storage.connections.subscribe('c', 'ch')).toBe(false);
    outcome = 'subscribed';
    expect(await storage.connections.subscribe('c', 'ch')).toBe(true);
  });

  it('the cursor hands the last id of a page back to the driver, whatever its characters', async () => {
    const asked: (string | undefined)[] = [];
    const ids = ['a', 'ünï €', '😀 {ws}', "'quote'"];
    const storage = stubbed({
      async subscribers(_channel, after, limit) {
        asked.push(after);
        const rest = after === undefined ? ids : ids.slice(ids.indexOf(after) + 1);
        return { connectionIds: rest.slice(0, limit), more: rest.length > limit };
      },
    });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await storage.connections.subscribers('ch', { limit: 1, cursor });
      seen.push(...page.connectionIds);
      cursor = page.cursor;
      if (cursor !== undefined) expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    } while (cursor !== undefined);
    expect(seen).toEqual(ids);
    expect(asked).toEqual([undefined, ...ids.slice(0, -1)]);
    // A page that is not the last one but came back empty ends the walk rather than looping.
    const empty = stubbed({ subscribers: async () => ({ connectionIds: [], more: true }) });
    expect(await empty.connections.subscribers('ch')).toEqual({ connectionIds: [] });
  });

  it('register defaults ttl to 7200 s and refuses more than a day before reaching the driver', async () => {
    const ttls: number[] = [];
    const storage = stubbed({
      async register(c) {
        ttls.push(c.ttlMs);
        return { ...c, connectedAt: '', expiresAt: '', channels: [] } as never;
      },
    });
    const input = {
      connectionId: 'c',
      identity: 'i',
      tokenId: 't',
      scopes: ['admin' as const],
      resources: ['*'],
    };
    await storage.connections.register(input);
    await storage.connections.register({ ...input, ttl: 86_400 });
    await expect(storage.connections.register({ ...input, ttl: 86_400.5 })).rejects.toBeInstanceOf(
      ValidationError,
    );
    expect(ttls).toEqual([7_200_000, 86_400_000]);
  });
});
