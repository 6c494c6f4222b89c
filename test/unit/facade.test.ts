/**
 * The shared facade's own duties, on a memory driver whose events can be made to fail.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../lib/config/index.js';
import { BackendUnavailableError } from '../../lib/errors.js';
import type { Driver, EventDriver } from '../../lib/storage/driver.js';
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
