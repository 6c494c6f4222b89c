/**
 * Reads a database of the upstream (Python) Kubently service as migration records: the import
 * of an existing deployment. One reader per store under `legacy/` (`layout.ts` names the keys),
 * composed here. Keys are listed with SCAN (on every primary of a cluster), never
 * KEYS, and read with pipelines; remaining TTLs become absolute expiries with the server's TIME,
 * read in the same pipeline.
 *
 * How the legacy keys map onto the stores (every value there is UTF-8 text; JSON is Python's
 * `json.dumps`; times are `datetime.isoformat()`, `+00:00` with or without microseconds, and a
 * timestamp without an offset is UTC):
 *
 * sessions
 * - `session:{id}` (JSON, TTL) → a session: id from the key; `cluster_id`, `user_id`,
 *   `correlation_id`, `service_identity` to their columns; `created_at` and `last_activity` to
 *   the creation and activity times; `ttl` (seconds, default 3600) to the keep-alive ttl. The
 *   expiry is the key's own TTL (server TIME + PTTL): the JSON's `expires_at` is never updated by
 *   a keep-alive and goes stale. A key without TTL expires at `last_activity` + ttl (already past:
 *   skipped as expired). Fields without a column (`command_count`, anything unknown) are kept in
 *   the session's data object. A key whose JSON does not parse, or without `cluster_id`, is
 *   skipped with a reason; the copy goes on.
 * - `correlation:{corr}:sessions` (set) cross-checks correlation ids: a session whose JSON has
 *   none but is a member gets that set's correlation id.
 * - `sessions:active`, `cluster:session:{cluster}` and the correlation sets are the legacy
 *   service's derived indexes; the sessions table is the index here, so they are not written.
 *   Their entries that name no live session are counted as skipped (`STALE_REASONS`).
 *
 * kv (same key names, so code reading them keeps working)
 * - `cluster:active:{cluster}` → value = the stored text as a JSON string (`"1"` or a session
 *   id), expiry from its TTL. It also says an executor is connected without any session, which
 *   sessions cannot express.
 * - `cluster:{cluster}:capabilities` → value = the JSON as stored, expiry from its TTL.
 * - `result:{command}` → the JSON as stored (text that is not JSON: as a JSON string).
 * - `command:cluster:{command}` → the cluster id as a JSON string (always a string: a cluster
 *   named `1` stays the string "1").
 *
 * tokens (only SHA-256 hashes are written; a plaintext never leaves this module)
 * - `executor:token:{cluster}` (plaintext) → id `legacy-executor:{cluster}`, identity
 *   `executor:{cluster}`, the executor's scopes (`EXECUTOR_SCOPES`) on the cluster's resources
 *   (`{cluster}`, `{cluster}:*`, `*:{cluster}`, `*:{cluster}:*`), created at the import time (the
 *   legacy layout keeps none), expiring with the key's TTL if it has one.
 * - `api:key:{sha256}` (identity string) → id `legacy-api-key:{sha256}`, the hash from the key
 *   name (a name that is not 64 lowercase hex digits is skipped: the legacy service could never
 *   have matched it), every scope but `admin` on `*`, expiring with the key's TTL if any.
 * - Two legacy tokens with the same secret (two clusters sharing one executor token) cannot both
 *   be kept, since a secret names one identity here: the first read is kept, the others skipped.
 *
 * events
 * - `session:events` (list, newest first) → channel `session:events`; an event's id is its
 *   position counted from the list's tail (the oldest is 1), so ids stay put while the service
 *   pushes new events; its time is the entry's `timestamp`; the channel's last id is the list's
 *   length. An entry that is not JSON is kept as a JSON string.
 *
 * audit
 * - `auth:audit`, then `auth:audit:enhanced` (lists, newest first) → entries oldest first, each
 *   list in turn; source id `{list}:{position from the tail, 10 digits}`, the copy's resume point.
 *   identity = `data.service_identity` (else `unknown`), action = `type`, resource =
 *   `data.cluster_id`, correlation id = the top-level `correlation_id`, outcome = `data.outcome`
 *   (`success` → ok; `failure`, `timeout` → error; anything else ok), details = `data`, time =
 *   `timestamp`.
 *
 * Not migrated, counted per family in the kv store's skipped reasons (`notMigrated`): `metrics:*`
 * counters, the dead `queue:commands:*` and `command:tracking:*`, the A2A agent's checkpoints
 * `kubently:ckpt:*` and incident store `kubently:incidents:*`, and any key not named above.
 *
 * Positions counted from a list's tail are stable while the service only pushes; once a list is
 * full (1000 events, 10000 audit entries) every push also trims its oldest entry and shifts them.
 * Import from a stopped service, or one whose lists are not full.
 */
import type { RedisClient } from '../storage/redis/client.js';
import { legacyKvReader } from './legacy/kv.js';
import { AUDIT_LISTS, SESSION_EVENTS } from './legacy/layout.js';
import { legacyAuditReader, legacyEventsReader } from './legacy/lists.js';
import type { LegacyReadContext } from './legacy/reads.js';
import { legacySessionsReader } from './legacy/sessions.js';
import { legacyTokensReader } from './legacy/tokens.js';
import type { StoreName } from './records.js';
import { DataMigrationInputError, type RecordSource, type StoreReader } from './source.js';

export {
  API_KEY_SCOPES,
  AUDIT_LISTS,
  classifyLegacyKey,
  EXECUTOR_SCOPES,
  executorResources,
  NOT_MIGRATED_FAMILIES,
  notMigrated,
  parseIsoTime,
  SESSION_EVENTS,
  SKIP_REASONS,
  STALE_REASONS,
  UNRECOGNISED,
} from './legacy/layout.js';

export interface LegacySourceOptions {
  client: RedisClient;
  /** For messages: where the data comes from, without credentials. */
  name: string;
  /** A prefix in front of every legacy key name (default none: the upstream service uses none). */
  prefix?: string;
  /**
   * The import time in ms (default the clock), read once: imported tokens are created then. A
   * copy resumed or validated in another process should pass the first run's time.
   */
  now?: () => number;
}

type LegacyStore = 'kv' | 'sessions' | 'tokens' | 'events' | 'audit';
const LEGACY_STORES: readonly LegacyStore[] = ['kv', 'sessions', 'tokens', 'events', 'audit'];
const isLegacyStore = (store: StoreName): store is LegacyStore =>
  LEGACY_STORES.some((legacy) => legacy === store);

/** A store the legacy database has nothing of: estimated 0, no batches, nothing fetched. */
const nothing = {
  estimate: async () => 0,
  async *batches() {},
  fetch: async (ids: string[]) => ids.map(() => undefined),
};

export function createLegacySource(options: LegacySourceOptions): RecordSource {
  const { client } = options;
  const prefix = options.prefix ?? '';
  const ctx: LegacyReadContext = { client, prefix, importedAtMs: (options.now ?? Date.now)() };
  const readers: { [S in LegacyStore]: StoreReader<S> } = {
    kv: legacyKvReader(ctx),
    sessions: legacySessionsReader(ctx),
    tokens: legacyTokensReader(ctx),
    events: legacyEventsReader(ctx),
    audit: legacyAuditReader(ctx),
  };
  const reader = <S extends StoreName>(store: S): StoreReader<S> => {
    if (!isLegacyStore(store)) return nothing;
    const found: StoreReader<S & LegacyStore> = readers[store];
    return found;
  };

  return {
    name: options.name,
    layout: 'legacy-kubently',
    stores: [...LEGACY_STORES],
    mutable: (store) => store === 'kv' || store === 'sessions' || store === 'tokens',
    estimate: (store) => reader(store).estimate(),

    async *batches(store, cursor, batchSize) {
      if (cursor === 'done') return;
      yield* reader(store).batches(cursor, batchSize);
    },

    async fetch(store, ids) {
      if (ids.length === 0) return [];
      return reader(store).fetch(ids);
    },

    async check() {
      try {
        await client.ping();
      } catch (error) {
        throw new DataMigrationInputError(
          `cannot reach the legacy Redis at ${options.name}: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      }
      // The well-known keys must have the legacy types: anything else is not a legacy database.
      const expected: [string, string][] = [
        [`${prefix}${SESSION_EVENTS}`, 'list'],
        ...AUDIT_LISTS.map((list): [string, string] => [`${prefix}${list}`, 'list']),
        [`${prefix}sessions:active`, 'set'],
      ];
      for (const [key, type] of expected) {
        const actual = await client.type(key);
        if (actual !== 'none' && actual !== type) {
          throw new DataMigrationInputError(
            `${options.name} does not hold the upstream Kubently layout: ${key} is a ${actual}, not a ${type}` +
              (prefix === '' ? '' : ` (prefix ${JSON.stringify(prefix)})`),
          );
        }
      }
    },

    async close() {
      // The caller owns the client.
    },
  };
}
