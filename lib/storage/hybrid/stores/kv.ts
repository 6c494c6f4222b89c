import type { Driver, Expiry, KvDriver } from '../../driver.js';
import type { KvEntry } from '../../types.js';
import { holdsValue, type JournalEntry } from '../journal.js';
import type { StoreDeps } from './deps.js';

const kvSnapshot = async (driver: Driver, key: string): Promise<JournalEntry[]> => {
  const entry = await driver.kv.getEntry(key);
  return [
    {
      t: 'kv',
      key,
      json: entry === undefined ? null : JSON.stringify(entry.value),
      atMs: entry?.expiresAt ? Date.parse(entry.expiresAt) : null,
    },
  ];
};

const atMsOf = (expiry: Expiry | undefined): number | null =>
  expiry === undefined ? null : 'ttlMs' in expiry ? Date.now() + expiry.ttlMs : expiry.atMs;

/**
 * Takes a fallback kv write back: while the key still holds what the write left (`json`), its
 * earlier entry (`prior`, read before the write) is put back, or the key deleted if it had none.
 */
async function restoreKv(driver: Driver, key: string, json: string, prior: KvEntry | undefined) {
  if (!(await holdsValue(driver, key, json))) return;
  if (prior === undefined) await driver.kv.delete(key);
  else {
    const atMs = prior.expiresAt ? Date.parse(prior.expiresAt) : undefined;
    await driver.kv.set(
      key,
      JSON.stringify(prior.value),
      atMs === undefined ? undefined : { atMs },
      undefined,
    );
  }
}

export function hybridKv({ router: { read }, write }: StoreDeps): KvDriver {
  return {
    get: (key) => read('cache', 'kv.get', (d) => d.kv.get(key)),
    getEntry: (key) => read('cache', 'kv.getEntry', (d) => d.kv.getEntry(key)),
    set: (key, json, expiry, condition) =>
      write(
        'cache',
        'kv.set',
        (d) => d.kv.set(key, json, expiry, condition),
        (_d, ok) => (ok ? [{ t: 'kv', key, json, atMs: atMsOf(expiry) }] : []),
        {
          before: (d) => d.kv.getEntry(key),
          undo: (d, ok, prior) => (ok ? restoreKv(d, key, json, prior) : Promise.resolve()),
          undoSafeUnderSync: true,
        },
      ),
    delete: (key) =>
      write(
        'cache',
        'kv.delete',
        (d) => d.kv.delete(key),
        () => [{ t: 'kv', key, json: null, atMs: null }],
      ),
    exists: (key) => read('cache', 'kv.exists', (d) => d.kv.exists(key)),
    expire: (key, expiry) =>
      write(
        'cache',
        'kv.expire',
        (d) => d.kv.expire(key, expiry),
        (d, ok) => (ok ? kvSnapshot(d, key) : []),
      ),
    ttlMs: (key) => read('cache', 'kv.ttl', (d) => d.kv.ttlMs(key)),
    incr: (key, by) =>
      write(
        'cache',
        'kv.incr',
        (d) => d.kv.incr(key, by),
        (d) => kvSnapshot(d, key),
        // Counted back: other containers' increments stay (a counter this incr created stays at 0).
        { undo: (d) => d.kv.incr(key, -by), undoSafeUnderSync: true },
      ),
    getMany: (keys) => read('cache', 'kv.getMany', (d) => d.kv.getMany(keys)),
    setMany: (entries) =>
      write(
        'cache',
        'kv.setMany',
        (d) => d.kv.setMany(entries),
        () =>
          entries.map(
            (e): JournalEntry => ({
              t: 'kv',
              key: e.key,
              json: e.json,
              atMs: e.ttlMs === undefined ? null : Date.now() + e.ttlMs,
            }),
          ),
        {
          before: (d) => Promise.all(entries.map((e) => d.kv.getEntry(e.key))),
          undo: async (d, _result, priors) => {
            await Promise.all(entries.map((e, i) => restoreKv(d, e.key, e.json, priors?.[i])));
          },
          undoSafeUnderSync: true,
        },
      ),
  };
}
