/** Legacy kv families (`cluster:active:*`, `cluster:*:capabilities`, `result:*`, `command:cluster:*`) → kv. */
import type { KvRecord } from '../records.js';
import { globEscape } from '../redis-scan.js';
import type { StoreReader } from '../source.js';
import { add, asJson, classifyLegacyKey, notMigrated, SKIP_REASONS } from './layout.js';
import {
  countKeys,
  type LegacyReadContext,
  readStrings,
  type StringRead,
  unprefixed,
  walk,
} from './reads.js';

type KvFamily = 'active' | 'capabilities' | 'result' | 'command';

/** The family of a kv key name, or undefined when the name is not a kv one. */
function kvFamily(name: string): KvFamily | undefined {
  const kind = classifyLegacyKey(name);
  return kind.store === 'kv' ? kind.family : undefined;
}

/** A live key as its kv record: plain-text families as JSON strings, the others as their JSON. */
function kvRecord(name: string, family: KvFamily, read: StringRead): KvRecord | undefined {
  if (read.state !== 'live') return undefined;
  const value = family === 'active' || family === 'command' ? JSON.stringify(read.value) : asJson(read.value);
  return { key: name, value, expiresAtMs: read.expiresAtMs };
}

export function legacyKvReader(ctx: LegacyReadContext): StoreReader<'kv'> {
  const all = `${globEscape(ctx.prefix)}*`;
  return {
    estimate: () => countKeys(ctx, all, (name) => kvFamily(name) !== undefined),

    batches: (cursor, batchSize) =>
      walk<'kv'>(ctx, [all], cursor, batchSize, async (keys, node) => {
        const skipped: Record<string, number> = {};
        const wanted: { name: string; family: KvFamily }[] = [];
        for (const key of keys) {
          const name = unprefixed(ctx, key);
          const kind = classifyLegacyKey(name);
          if (kind.store === 'kv') wanted.push({ name, family: kind.family });
          else if (kind.store === 'skip') add(skipped, notMigrated(kind.family));
        }
        const reads = await readStrings(
          ctx,
          wanted.map(({ name }) => `${ctx.prefix}${name}`),
          node,
        );
        const records: KvRecord[] = [];
        reads.forEach((read, i) => {
          const record = kvRecord(wanted[i]!.name, wanted[i]!.family, read);
          if (record) records.push(record);
          else add(skipped, read.state === 'wrongType' ? SKIP_REASONS.wrongType : SKIP_REASONS.expired);
        });
        return { records, skipped };
      }),

    async fetch(ids) {
      const wanted = ids.flatMap((name) => {
        const family = kvFamily(name);
        return family === undefined ? [] : [{ name, family }];
      });
      const reads = await readStrings(
        ctx,
        wanted.map(({ name }) => `${ctx.prefix}${name}`),
      );
      const byId = new Map(wanted.map(({ name, family }, i) => [name, kvRecord(name, family, reads[i]!)]));
      return ids.map((id) => byId.get(id));
    },
  };
}
