import { ConflictError } from '../../../errors.js';
import type { KvDriver } from '../../driver.js';
import { parseJson } from '../../validate.js';
import { deadline, ms, nullableMs, num, type StoreContext } from './context.js';

export function pgKv(ctx: StoreContext): KvDriver {
  const { table, query } = ctx;
  const kv = table('kv_store');
  const LIVE = '(expires_at IS NULL OR expires_at > now())';
  // The hot statements' texts are built once: a statement's name is looked up by its text per call.
  const GET = `SELECT value FROM ${kv} WHERE key = $1 AND ${LIVE}`;
  const upsert = (expires: string, onlyIfGone: string) =>
    `INSERT INTO ${kv} AS t (key, value, expires_at) VALUES ($1, $2, ${expires})
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at ${onlyIfGone}
     RETURNING 1`;
  const SET = upsert('NULL', '');
  const driver: KvDriver = {
    async get(key) {
      const [row] = await query<{ value: string }>(GET, [key]);
      return row && parseJson(row.value);
    },
    async getEntry(key) {
      const [row] = await query<{ value: string; expires: number | null }>(
        `SELECT value, ${ms('expires_at')} AS expires FROM ${kv} WHERE key = $1 AND ${LIVE}`,
        [key],
      );
      return row && { value: parseJson(row.value), expiresAt: nullableMs(row.expires) };
    },
    async set(key, json, expiry, condition) {
      const [expires, extra] = deadline(expiry, 3);
      const params = [key, json, ...extra];
      if (condition === 'xx') {
        const rows = await query(
          `UPDATE ${kv} SET value = $2, expires_at = ${expires} WHERE key = $1 AND ${LIVE} RETURNING 1`,
          params,
        );
        return rows.length === 1;
      }
      // An expiry already past stores an invisible row, which the sweep removes: nothing visible remains.
      const onlyIfGone = condition === 'nx' ? 'WHERE t.expires_at IS NOT NULL AND t.expires_at <= now()' : '';
      const text = expiry || condition ? upsert(expires, onlyIfGone) : SET;
      const rows = await query(text, params);
      return rows.length === 1;
    },
    async delete(key) {
      const [row] = await query<{ live: boolean }>(
        `DELETE FROM ${kv} WHERE key = $1 RETURNING ${LIVE} AS live`,
        [key],
      );
      return row?.live === true;
    },
    async exists(key) {
      return (await query(`SELECT 1 FROM ${kv} WHERE key = $1 AND ${LIVE}`, [key])).length === 1;
    },
    async expire(key, expiry) {
      const [expires, extra] = deadline(expiry, 2);
      const rows = await query(
        `UPDATE ${kv} SET expires_at = ${expires} WHERE key = $1 AND ${LIVE} RETURNING 1`,
        [key, ...extra],
      );
      return rows.length === 1;
    },
    async ttlMs(key) {
      const [row] = await query<{ left: number | null }>(
        `SELECT ${ms('expires_at')} - ${ms('now()')} AS left FROM ${kv} WHERE key = $1 AND ${LIVE}`,
        [key],
      );
      if (!row) return undefined;
      return row.left === null ? null : Math.max(0, num(row.left));
    },
    async incr(key, by) {
      // One upsert: a missing or expired key starts from 0 without TTL; a live integer adds `by`
      // and keeps its TTL. Anything else (not an integer, or a sum past 2^53-1) updates nothing.
      const rows = await query<{ value: string }>(
        `INSERT INTO ${kv} AS t (key, value, expires_at) VALUES ($1, $2, NULL)
         ON CONFLICT (key) DO UPDATE SET
           value = CASE WHEN t.expires_at <= now() THEN EXCLUDED.value
                        ELSE (t.value::numeric + EXCLUDED.value::numeric)::text END,
           expires_at = CASE WHEN t.expires_at <= now() THEN NULL ELSE t.expires_at END
         WHERE CASE WHEN t.expires_at <= now() THEN true
                    WHEN t.value ~ '^-?[0-9]{1,16}$'
                      THEN abs(t.value::numeric) <= 9007199254740991
                       AND abs(t.value::numeric + EXCLUDED.value::numeric) <= 9007199254740991
                    ELSE false END
         RETURNING value`,
        [key, String(by)],
      );
      if (rows[0]) return num(rows[0].value);
      const current = await driver.get(key);
      if (typeof current === 'number' && Number.isSafeInteger(current))
        throw new ConflictError(`incr of ${JSON.stringify(key)} would overflow`);
      throw new ConflictError(`value of ${JSON.stringify(key)} is not an integer`);
    },
    async getMany(keys) {
      if (keys.length === 0) return [];
      const rows = await query<{ key: string; value: string }>(
        `SELECT key, value FROM ${kv} WHERE key = ANY($1::text[]) AND ${LIVE}`,
        [keys],
      );
      const found = new Map(rows.map((r) => [r.key, r.value]));
      return keys.map((key) => {
        const json = found.get(key);
        return json === undefined ? undefined : parseJson(json);
      });
    },
    async setMany(entries) {
      if (entries.length === 0) return;
      // One row per key (the last entry wins): an upsert cannot touch the same row twice. Rows
      // are written in key order, so concurrent calls lock them in one order and never deadlock.
      const last = new Map(entries.map((e) => [e.key, e]));
      const rows = [...last.values()];
      await query(
        `INSERT INTO ${kv} (key, value, expires_at)
         SELECT k, v, CASE WHEN ttl IS NULL THEN NULL ELSE now() + ttl * interval '1 millisecond' END
         FROM unnest($1::text[], $2::text[], $3::float8[]) AS u(k, v, ttl)
         ORDER BY k
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
        [rows.map((e) => e.key), rows.map((e) => e.json), rows.map((e) => e.ttlMs ?? null)],
      );
    },
  };
  return driver;
}
