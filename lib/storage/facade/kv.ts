/** The key-value store: checks and defaults in front of the driver's. */
import { ValidationError } from '../../errors.js';
import type { Expiry, KvDriver } from '../driver.js';
import type { KvStore } from '../types.js';
import { checkBool, checkInt, checkName, checkOptions, checkTtl, serializeJson } from '../validate.js';
import { checkBatch, checkDeadline } from './checks.js';

const SET_OPTIONS = ['ttl', 'expiresAt', 'nx', 'xx'] as const;

export function createKvStore(driver: KvDriver, maxBytes: number): KvStore {
  return {
    get: async (key) => driver.get(checkName('key', key)),
    getEntry: async (key) => driver.getEntry(checkName('key', key)),
    async set(key, value, options) {
      checkName('key', key);
      const json = serializeJson('value', value, maxBytes);
      const { expiry, condition } = checkSetOptions(options);
      return driver.set(key, json, expiry, condition);
    },
    delete: async (key) => driver.delete(checkName('key', key)),
    exists: async (key) => driver.exists(checkName('key', key)),
    async expire(key, ttl) {
      checkName('key', key);
      return driver.expire(key, ttl === null ? null : { ttlMs: checkTtl('ttl', ttl) });
    },
    async expireAt(key, at) {
      checkName('key', key);
      return driver.expire(key, { atMs: checkDeadline('at', at) });
    },
    async ttl(key) {
      const ms = await driver.ttlMs(checkName('key', key));
      return ms === null || ms === undefined ? ms : ms / 1000;
    },
    async incr(key, by = 1) {
      checkName('key', key);
      checkInt('by', by, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      return driver.incr(key, by);
    },
    async getMany(keys) {
      checkBatch('keys', keys);
      for (const [i, key] of keys.entries()) checkName(`keys[${i}]`, key);
      return keys.length === 0 ? Promise.resolve([]) : driver.getMany(keys);
    },
    async setMany(entries) {
      checkBatch('entries', entries);
      const checked = entries.map((entry, i) => {
        const e = checkOptions(`entries[${i}]`, entry, ['key', 'value', 'ttl']);
        if (!('value' in (entry as object))) throw new ValidationError(`entries[${i}].value`, 'is required');
        return {
          key: checkName(`entries[${i}].key`, e.key),
          json: serializeJson(`entries[${i}].value`, e.value, maxBytes),
          ttlMs: e.ttl === undefined ? undefined : checkTtl(`entries[${i}].ttl`, e.ttl),
        };
      });
      if (checked.length > 0) await driver.setMany(checked);
    },
  };
}

/** `set`'s options: at most one of ttl and expiresAt, at most one of nx and xx. */
function checkSetOptions(options: unknown): {
  expiry: Expiry | undefined;
  condition: 'nx' | 'xx' | undefined;
} {
  const o = checkOptions('options', options, SET_OPTIONS);
  const nx = o.nx === undefined ? false : checkBool('options.nx', o.nx);
  const xx = o.xx === undefined ? false : checkBool('options.xx', o.xx);
  if (nx && xx) throw new ValidationError('options', 'nx and xx cannot both be set');
  if (o.ttl !== undefined && o.expiresAt !== undefined) {
    throw new ValidationError('options', 'ttl and expiresAt cannot both be set');
  }
  let expiry: Expiry | undefined;
  if (o.ttl !== undefined) expiry = { ttlMs: checkTtl('options.ttl', o.ttl) };
  else if (o.expiresAt !== undefined) expiry = { atMs: checkDeadline('options.expiresAt', o.expiresAt) };
  return { expiry, condition: nx ? 'nx' : xx ? 'xx' : undefined };
}
