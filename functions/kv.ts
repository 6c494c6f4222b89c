/** KV routes of docs/api.md: `PUT|GET|DELETE /kv/{key}`, `POST /kv/{key}/expire`, `POST /kv/{key}/incr`. */
import { ConflictError, NotFoundError } from '../lib/errors.js';
import type { Json } from '../lib/storage/types.js';
import { httpApi } from './runtime/api.js';
import { json, noContent } from './runtime/http.js';

/** The expiry a TTL in seconds gives from now (the backend keeps the same deadline to the ms). */
const expiresAt = (ttl: number | null | undefined) =>
  ttl === undefined || ttl === null ? null : new Date(Date.now() + Math.round(ttl * 1000)).toISOString();

export const handler = httpApi('kv', {
  'PUT /kv/{key}': async ({ storage, params: { key }, body, authorizeResource }) => {
    authorizeResource(key!);
    const { value, ttl, nx, xx } = body;
    const written = await storage.kv.set(key!, value as Json, { ttl, nx, xx });
    if (!written) {
      throw new ConflictError(
        nx ? `key ${JSON.stringify(key)} exists (nx)` : `key ${JSON.stringify(key)} does not exist (xx)`,
      );
    }
    return json(200, { key, expiresAt: expiresAt(ttl) });
  },

  'GET /kv/{key}': async ({ storage, params: { key }, authorizeResource }) => {
    authorizeResource(key!);
    const entry = await storage.kv.getEntry(key!);
    if (!entry) throw new NotFoundError(`key ${JSON.stringify(key)} not found`);
    return json(200, { key, value: entry.value, expiresAt: entry.expiresAt });
  },

  'DELETE /kv/{key}': async ({ storage, params: { key }, authorizeResource }) => {
    authorizeResource(key!);
    if (!(await storage.kv.delete(key!))) throw new NotFoundError(`key ${JSON.stringify(key)} not found`);
    return noContent();
  },

  'POST /kv/{key}/expire': async ({ storage, params: { key }, body, authorizeResource }) => {
    authorizeResource(key!);
    if (!(await storage.kv.expire(key!, body.ttl)))
      throw new NotFoundError(`key ${JSON.stringify(key)} not found`);
    return json(200, { key, expiresAt: expiresAt(body.ttl) });
  },

  'POST /kv/{key}/incr': async ({ storage, params: { key }, body, authorizeResource }) => {
    authorizeResource(key!);
    const value = await storage.kv.incr(key!, body.by ?? 1);
    return json(200, { key, value });
  },
});
