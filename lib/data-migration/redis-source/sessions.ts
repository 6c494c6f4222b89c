/** Sessions: the hashes `sess:<id>` under the `{s}` tag, listed by SCAN, read by one script a batch. */
import { SESSION_FIELDS, sessionKeys } from '../../storage/redis/keys.js';
import { dataMigrationReadHashes as READ_HASHES } from '../../storage/redis/scripts.generated.js';
import type { SessionRecord } from '../records.js';
import { globEscape } from '../redis-scan.js';
import { countKeys, present, type RedisReadContext, type StoreReader, scanned } from './context.js';
import { nullable, serverMs, texts } from './replies.js';

/** The sessions of `ids` (undefined where one is gone or expired). */
async function readSessions(ctx: RedisReadContext, ids: string[]): Promise<(SessionRecord | undefined)[]> {
  const keys = sessionKeys(ctx.prefix);
  // Every session key shares the `{s}` tag: one script reads the batch, on a cluster too.
  const reply = texts(
    await ctx.client.eval(READ_HASHES, ids.length, ...ids.map((id) => keys.session(id)), ...SESSION_FIELDS),
    'readHashes',
  );
  const [seconds, micros, ...flat] = reply;
  const now = serverMs([seconds, micros]);
  const width = SESSION_FIELDS.length;
  return ids.map((id, i) => toSession(id, flat.slice(i * width, i * width + width), now));
}

/** One session hash's fields, in SESSION_FIELDS order → its record, or undefined when expired or gone. */
function toSession(sessionId: string, fields: (string | null)[], now: number): SessionRecord | undefined {
  const [cluster, user, corr, svc, data, created, last, exp, ttl] = fields;
  if (cluster == null || exp == null || Number(exp) <= now) return undefined;
  return {
    sessionId,
    clusterId: cluster,
    userId: nullable(user),
    correlationId: nullable(corr),
    serviceIdentity: nullable(svc),
    data: data ?? '{}',
    ttlMs: Number(ttl) > 0 ? Number(ttl) : Math.max(1, Number(exp) - Number(last)),
    createdAtMs: Number(created),
    lastActivityMs: Number(last),
    expiresAtMs: Number(exp),
  };
}

export function sessionsReader(ctx: RedisReadContext): StoreReader<'sessions'> {
  const head = sessionKeys(ctx.prefix).session('');
  return {
    estimate: () => countKeys(ctx, head),
    batches: (cursor, batchSize) =>
      scanned<'sessions'>(ctx, `${globEscape(head)}*`, cursor, batchSize, async (keys) =>
        present(
          await readSessions(
            ctx,
            keys.map((key) => key.slice(head.length)),
          ),
          'expired',
        ),
      ),
    fetch: (ids) => readSessions(ctx, ids),
  };
}
