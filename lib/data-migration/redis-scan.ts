/**
 * Listing keys for the Redis sources (this project's layout and the legacy one): SCAN, never
 * KEYS, on every primary of a cluster, with a cursor that names the node and can be kept in a
 * checkpoint.
 */
import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from '../storage/redis/client.js';
import type { Cursor } from './source.js';

/** Escapes SCAN MATCH glob characters in a literal. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** Every node SCAN must walk: the primaries of a cluster, or the one server. */
export function primaries(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client as Redis];
}

/**
 * One SCAN step across the nodes: `cursor` is [node index, node cursor]. Answers the keys, the
 * node they came from and the next cursor (null when every node is done). Keys of one node are
 * gathered until there are `count` of them: a prefix matching few of the keys (a shared
 * database) still makes full batches, not one per SCAN call.
 */
export async function scanStep(
  client: RedisClient,
  pattern: string,
  cursor: Cursor | undefined,
  count: number,
): Promise<{ keys: string[]; node: Redis; next: Cursor | null }> {
  const all = primaries(client);
  let [index, position] = (cursor as [number, string] | undefined) ?? [0, '0'];
  const found: string[] = [];
  for (;;) {
    const node = all[index];
    if (!node) return { keys: found, node: all[0]!, next: null };
    const [nextPosition, keys] = await node.scan(position, 'MATCH', pattern, 'COUNT', count);
    found.push(...keys);
    if (nextPosition === '0') {
      index += 1;
      position = '0';
    } else position = nextPosition;
    const next: Cursor | null = index >= all.length ? null : [index, position];
    if (next === null || (found.length > 0 && (found.length >= count || nextPosition === '0'))) {
      return { keys: found, node, next };
    }
  }
}
