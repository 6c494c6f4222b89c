/** WebSocket connections: the `conns` zset walked by ZSCAN, each read from its hash and channel set. */
import { connectionKeys } from '../../storage/redis/keys.js';
import type { ConnectionRecord } from '../records.js';
import { textCursor } from '../source.js';
import { compareUtf8, pipelineOn, present, type RedisReadContext, type StoreReader } from './context.js';
import { exec, members, serverMs, texts } from './replies.js';

/** The fields of `conn:<id>` a record needs, in the order `toConnection` reads them. */
const CONNECTION_FIELDS = ['identity', 'scopes', 'resources', 'connected', 'exp', 'token', 'tokexp'] as const;

const jsonStrings = (json: string | null): string[] => {
  const value: unknown = JSON.parse(json ?? '[]');
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string'))
    throw new Error(`a connection's scopes or resources are not a list of strings: ${json}`);
  return value;
};

function toConnection(
  connectionId: string,
  fields: (string | null)[],
  channels: string[],
  now: number,
): ConnectionRecord | undefined {
  const [identity, scopes, resources, connected, exp, tokenId, tokenExp] = fields;
  if (identity == null || exp == null || Number(exp) <= now) return undefined;
  return {
    connectionId,
    identity,
    scopes: jsonStrings(scopes ?? null),
    resources: jsonStrings(resources ?? null),
    tokenId: tokenId ?? '',
    tokenExpiresAtMs: tokenExp ? Number(tokenExp) : null,
    connectedAtMs: Number(connected),
    expiresAtMs: Number(exp),
    channels: [...channels].sort(compareUtf8),
  };
}

async function readConnections(
  ctx: RedisReadContext,
  ids: string[],
): Promise<(ConnectionRecord | undefined)[]> {
  const keys = connectionKeys(ctx.prefix);
  const pipeline = pipelineOn(ctx).time();
  for (const id of ids) pipeline.hmget(keys.connection(id), ...CONNECTION_FIELDS).smembers(keys.channels(id));
  const [time, ...replies] = await exec(pipeline);
  const now = serverMs(time);
  return ids.map((id, i) =>
    toConnection(id, texts(replies[i * 2], 'HMGET'), members(replies[i * 2 + 1], 'SMEMBERS'), now),
  );
}

export function connectionsReader(ctx: RedisReadContext): StoreReader<'connections'> {
  const keys = connectionKeys(ctx.prefix);
  return {
    estimate: () => ctx.client.zcard(keys.conns),

    async *batches(cursor, batchSize) {
      let position = textCursor(cursor, '0');
      for (;;) {
        const [next, flat] = await ctx.client.zscan(keys.conns, position, 'COUNT', batchSize);
        const ids = [...new Set(flat.filter((_, i) => i % 2 === 0))];
        const found = ids.length ? await readConnections(ctx, ids) : [];
        position = next === '0' ? 'done' : next;
        yield { ...present(found, 'expired'), cursor: position, scanned: ids.length };
        if (next === '0') return;
      }
    },

    fetch: (ids) => readConnections(ctx, ids),
  };
}
