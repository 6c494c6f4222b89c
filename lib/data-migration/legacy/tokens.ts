/**
 * Legacy tokens → tokens: `executor:token:{cluster}` (the secret itself) becomes an executor
 * token for its cluster, `api:key:{sha256}` (the identity) an API key with every scope but
 * admin. A second token with the same secret is skipped.
 */
import { sha256, type TokenRecord } from '../records.js';
import { globEscape } from '../redis-scan.js';
import type { StoreReader } from '../source.js';
import {
  API_KEY_SCOPES,
  add,
  EXECUTOR_SCOPES,
  executorResources,
  SKIP_REASONS,
  TOKEN_KEYS,
} from './layout.js';
import {
  countKeys,
  type LegacyReadContext,
  readStrings,
  type StringRead,
  unprefixed,
  walk,
} from './reads.js';

const SHA256 = /^[0-9a-f]{64}$/;

type TokenRead = { record: TokenRecord } | { skip: string };

function tokenRecord(name: string, read: StringRead, importedAtMs: number): TokenRead {
  if (read.state === 'gone') return { skip: SKIP_REASONS.expired };
  if (read.state === 'wrongType') return { skip: SKIP_REASONS.wrongType };
  if (read.value === '') return { skip: SKIP_REASONS.emptyToken };
  const imported = { createdAtMs: importedAtMs, expiresAtMs: read.expiresAtMs, issuerId: null };
  if (name.startsWith(TOKEN_KEYS.executor)) {
    const clusterId = name.slice(TOKEN_KEYS.executor.length);
    return {
      record: {
        id: `${TOKEN_KEYS.executorId}${clusterId}`,
        hash: sha256(read.value),
        identity: `executor:${clusterId}`,
        scopes: [...EXECUTOR_SCOPES],
        resources: executorResources(clusterId),
        ...imported,
      },
    };
  }
  const hash = name.slice(TOKEN_KEYS.apiKey.length);
  if (!SHA256.test(hash)) return { skip: SKIP_REASONS.badApiKeyName };
  return {
    record: {
      id: `${TOKEN_KEYS.apiKeyId}${hash}`,
      hash,
      identity: read.value,
      scopes: [...API_KEY_SCOPES],
      resources: ['*'],
      ...imported,
    },
  };
}

/** The legacy key name of a token id, or undefined for an id this source never answers. */
function tokenKey(id: string): string | undefined {
  const { executor, apiKey, executorId, apiKeyId } = TOKEN_KEYS;
  if (id.startsWith(executorId) && id.length > executorId.length)
    return `${executor}${id.slice(executorId.length)}`;
  if (id.startsWith(apiKeyId) && SHA256.test(id.slice(apiKeyId.length)))
    return `${apiKey}${id.slice(apiKeyId.length)}`;
  return undefined;
}

export function legacyTokensReader(ctx: LegacyReadContext): StoreReader<'tokens'> {
  const patterns = [TOKEN_KEYS.executor, TOKEN_KEYS.apiKey].map(
    (head) => `${globEscape(`${ctx.prefix}${head}`)}*`,
  );
  return {
    async estimate() {
      let total = 0;
      for (const pattern of patterns) total += await countKeys(ctx, pattern, () => true);
      return total;
    },

    batches(cursor, batchSize) {
      // Secrets seen in this read: a second legacy token with the same secret is not kept.
      const seen = new Set<string>();
      return walk<'tokens'>(ctx, patterns, cursor, batchSize, async (keys, node) => {
        const reads = await readStrings(ctx, keys, node);
        const records: TokenRecord[] = [];
        const skipped: Record<string, number> = {};
        reads.forEach((read, i) => {
          const token = tokenRecord(unprefixed(ctx, keys[i]!), read, ctx.importedAtMs);
          if ('skip' in token) add(skipped, token.skip);
          else if (seen.has(token.record.hash)) add(skipped, SKIP_REASONS.sharedSecret);
          else {
            seen.add(token.record.hash);
            records.push(token.record);
          }
        });
        return { records, skipped };
      });
    },

    async fetch(ids) {
      const names = ids.map(tokenKey);
      const wanted = names.filter((name): name is string => name !== undefined);
      const reads = await readStrings(
        ctx,
        wanted.map((name) => `${ctx.prefix}${name}`),
      );
      const byName = new Map<string, TokenRecord>();
      wanted.forEach((name, i) => {
        const token = tokenRecord(name, reads[i]!, ctx.importedAtMs);
        if ('record' in token) byName.set(name, token.record);
      });
      return names.map((name) => (name === undefined ? undefined : byName.get(name)));
    },
  };
}
