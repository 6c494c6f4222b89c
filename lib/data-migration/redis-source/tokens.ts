/** Tokens: the `ids` hash (id → SHA-256) walked by HSCAN, each record read from `h:<sha256>`. */
import { tokenKeys } from '../../storage/redis/keys.js';
import type { TokenRecord } from '../records.js';
import { textCursor } from '../source.js';
import { pipelineOn, present, type RedisReadContext, type StoreReader } from './context.js';
import { exec, serverMs, text } from './replies.js';

/** A token as the backend stores it (JSON under `h:<sha256>`). */
interface StoredToken {
  id: string;
  hash: string;
  identity: string;
  scopes: string[];
  resources: string[];
  createdAt: string;
  expiresAt: string | null;
  issuerId: string | null;
}

const isStrings = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === 'string');

/** The stored JSON → its fields, checked: a record of another shape is an error naming the key. */
function parseStoredToken(key: string, json: string): StoredToken {
  const value: unknown = JSON.parse(json);
  const record: Record<string, unknown> =
    typeof value === 'object' && value !== null ? Object.fromEntries(Object.entries(value)) : {};
  const { id, hash, identity, scopes, resources, createdAt, expiresAt, issuerId } = record;
  if (
    typeof id !== 'string' ||
    typeof hash !== 'string' ||
    typeof identity !== 'string' ||
    !isStrings(scopes) ||
    !isStrings(resources) ||
    typeof createdAt !== 'string' ||
    (expiresAt !== null && typeof expiresAt !== 'string') ||
    (issuerId != null && typeof issuerId !== 'string')
  )
    throw new Error(`${key} does not hold a token record`);
  return { id, hash, identity, scopes, resources, createdAt, expiresAt, issuerId: issuerId ?? null };
}

/** The tokens of `[id, sha256]` pairs (undefined where one is gone, expired or not that id's). */
async function readTokens(
  ctx: RedisReadContext,
  pairs: [string, string][],
): Promise<(TokenRecord | undefined)[]> {
  const keys = tokenKeys(ctx.prefix);
  const pipeline = pipelineOn(ctx).time();
  for (const [, hash] of pairs) pipeline.get(keys.byHash(hash));
  const [time, ...replies] = await exec(pipeline);
  const now = serverMs(time);
  return pairs.map(([id, hash], i) => {
    const json = text(replies[i], 'GET');
    if (json === null) return undefined;
    const token = parseStoredToken(keys.byHash(hash), json);
    const expiresAtMs = token.expiresAt === null ? null : Date.parse(token.expiresAt);
    if (token.id !== id || (expiresAtMs !== null && expiresAtMs <= now)) return undefined;
    return {
      id: token.id,
      hash: token.hash,
      identity: token.identity,
      scopes: token.scopes,
      resources: token.resources,
      createdAtMs: Date.parse(token.createdAt),
      expiresAtMs,
      issuerId: token.issuerId,
    };
  });
}

export function tokensReader(ctx: RedisReadContext): StoreReader<'tokens'> {
  const keys = tokenKeys(ctx.prefix);
  return {
    estimate: () => ctx.client.hlen(keys.ids),

    async *batches(cursor, batchSize) {
      let position = textCursor(cursor, '0');
      for (;;) {
        const [next, flat] = await ctx.client.hscan(keys.ids, position, 'COUNT', batchSize);
        // HSCAN may answer a field twice.
        const hashById = new Map<string, string>();
        for (let i = 0; i + 1 < flat.length; i += 2)
          if (!hashById.has(flat[i]!)) hashById.set(flat[i]!, flat[i + 1]!);
        const pairs = [...hashById];
        const found = pairs.length ? await readTokens(ctx, pairs) : [];
        position = next === '0' ? 'done' : next;
        yield { ...present(found, 'expired'), cursor: position, scanned: pairs.length };
        if (next === '0') return;
      }
    },

    async fetch(ids) {
      const hashes = await ctx.client.hmget(keys.ids, ...ids);
      const records = await readTokens(
        ctx,
        ids.map((id, i): [string, string] => [id, hashes[i] || 'none']),
      );
      return records.map((record, i) => (hashes[i] == null ? undefined : record));
    },
  };
}
