/** kv keys: listed by SCAN, read with their remaining TTL as an absolute expiry. */
import { Cluster, type Redis } from 'ioredis';
import { kvKey } from '../../storage/redis/keys.js';
import { dataMigrationReadKv as READ_KV } from '../../storage/redis/scripts.generated.js';
import { type KvRecord, RESERVED_KV_PREFIX } from '../records.js';
import { globEscape } from '../redis-scan.js';
import {
  countKeys,
  pipelineOn,
  type ReadResult,
  type RedisReadContext,
  type StoreReader,
  scanned,
} from './context.js';
import { exec, serverMs, text } from './replies.js';

/** Reads kv keys: undefined where a key expired between listing and reading. */
async function readKv(
  ctx: RedisReadContext,
  keys: string[],
  node?: Redis,
): Promise<{ records: (KvRecord | undefined)[]; expired: number }> {
  const base = kvKey(ctx.prefix, '');
  let time: unknown;
  let pairs: unknown[];
  if (ctx.client instanceof Cluster) {
    // Keys of one node but many slots: a script would be refused (CROSSSLOT); a pipeline is not.
    const pipeline = pipelineOn(ctx, node).time();
    for (const key of keys) pipeline.get(key).pttl(key);
    [time, ...pairs] = await exec(pipeline);
  } else {
    // One script call instead of two commands per key: the client's own per-command work is
    // what bounds a pipelined read of small values.
    const reply = await ctx.client.eval(READ_KV, keys.length, ...keys);
    if (!Array.isArray(reply)) throw new Error('readKv: the script answered no array');
    const [seconds, micros, ...rest] = reply;
    [time, pairs] = [[seconds, micros], rest];
  }
  const now = serverMs(time);
  let expired = 0;
  const records = keys.map((key, i): KvRecord | undefined => {
    const value = text(pairs[i * 2], 'GET');
    const pttl = Number(pairs[i * 2 + 1]);
    if (value === null || pttl === -2) {
      expired += 1;
      return undefined;
    }
    return { key: key.slice(base.length), value, expiresAtMs: pttl < 0 ? null : now + pttl };
  });
  return { records, expired };
}

export function kvReader(ctx: RedisReadContext): StoreReader<'kv'> {
  const base = kvKey(ctx.prefix, '');
  const reserved = `${base}${RESERVED_KV_PREFIX}`;
  return {
    estimate: () => countKeys(ctx, base),

    batches: (cursor, batchSize) =>
      scanned<'kv'>(ctx, `${globEscape(base)}*`, cursor, batchSize, async (keys, node) => {
        const wanted = keys.filter((key) => !key.startsWith(reserved));
        const { records, expired } = await readKv(ctx, wanted, node);
        const result: ReadResult<KvRecord> = {
          records: records.filter((r): r is KvRecord => r !== undefined),
          skipped: expired ? { expired } : {},
        };
        if (wanted.length < keys.length) result.skipped.reserved = keys.length - wanted.length;
        return result;
      }),

    async fetch(ids) {
      const keys = ids.map((id) => kvKey(ctx.prefix, id));
      // Keys of a cluster live on different nodes: one GET/PTTL pair each, in flight together.
      if (ctx.client instanceof Cluster)
        return Promise.all(keys.map(async (key) => (await readKv(ctx, [key])).records[0]));
      return (await readKv(ctx, keys)).records;
    },
  };
}
