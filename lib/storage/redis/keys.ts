/**
 * The Redis key layout: the one owner of every key name, used by the backend, its Lua scripts
 * (through the `base` argument and the constants the generator writes in) and the data
 * migration, which reads the same keys.
 *
 * Every key starts with `keyPrefix`, followed by a hash tag per related key set, so a script
 * touches keys of one slot and runs on Redis Cluster and ElastiCache Serverless (as BullMQ keeps
 * a job's keys under one tag). kv keys are single keys.
 */

/** kv: `<prefix>kv:<key>`, the caller's JSON text, expiring natively. */
export function kvKey(prefix: string, key: string): string {
  return `${prefix}kv:${key}`;
}

/** Fields of a session hash, in the order scripts answer them (the Lua table FIELDS). */
export const SESSION_FIELDS: readonly string[] = [
  'cluster',
  'user',
  'corr',
  'svc',
  'data',
  'created',
  'last',
  'exp',
  'ttl',
];

/**
 * sessions: one hash tag for the whole store, so one script can update a session and every
 * index. sess:<id> (hash of SESSION_FIELDS), cluster:<clusterId> and corr:<id> (zsets of session
 * id → expiry ms), clusters (zset of cluster id → latest expiry ms), names (zset, all scores 0:
 * the members of clusters, for keyset pages by ZRANGEBYLEX; it expires with clusters).
 */
export function sessionKeys(prefix: string) {
  const base = `${prefix}{s}:`;
  return {
    base,
    clusters: `${base}clusters`,
    names: `${base}names`,
    session: (id: string) => `${base}sess:${id}`,
    cluster: (clusterId: string) => `${base}cluster:${clusterId}`,
    correlation: (correlationId: string) => `${base}corr:${correlationId}`,
  };
}

/**
 * The queue consumers' registry (push delivery over the WebSocket): one hash tag per queue,
 * consumers (hash: connection id → {m max, v visibility ms, l last claim ms}) and deliveries
 * (the leases each consumer holds); plain index keys: qcc:<connection id> (set: its queues), qcq
 * (set: queues with consumers), qcco (zset, all scores 0: connections with consumers, in byte
 * order for the cleanup's pages).
 */
export function consumerKeys(prefix: string) {
  return {
    queue: (queue: string) => {
      const base = `${prefix}{qc:${tagSafe(queue)}}:`;
      return { consumers: `${base}consumers`, deliveries: `${base}deliveries` };
    },
    connectionQueues: (connectionId: string) => `${prefix}qcc:${connectionId}`,
    allQueues: `${prefix}qcq`,
    allConnections: `${prefix}qcco`,
  };
}

/**
 * queues: one hash tag per queue. ready (zset id → enqueue sequence: FIFO), delayed (zset id →
 * visible-at ms), inflight (zset id → lease end ms), dead (zset id → death ms), seq (counter),
 * notify (list: wake-up tokens for long polls), notify:w (counter: long polls waiting), m:<id> (hash: p payload, s sequence, e enqueued
 * ms, a attempts, r current receipt), dd:<dedupId> (the first message id sent with it).
 */
export function queueKeys(prefix: string, queue: string) {
  const base = `${prefix}{q:${tagSafe(queue)}}:`;
  return {
    base,
    ready: `${base}ready`,
    delayed: `${base}delayed`,
    inflight: `${base}inflight`,
    dead: `${base}dead`,
    notify: `${base}notify`,
    seq: `${base}${TAGGED_TAILS.queueSeq}`,
    message: (id: string) => `${base}m:${id}`,
    dedup: (dedupId: string) => `${base}${TAGGED_TAILS.dedup}${dedupId}`,
  };
}

/**
 * What follows the tag in the keys a listing walks (the data migration finds queues, channels and
 * dedup ids by SCAN): one `seq` per queue, one counter per channel, one `dd:<id>` per dedup id.
 */
export const TAGGED_TAILS = { queueSeq: 'seq', eventCounter: 'n', dedup: 'dd:' } as const;

/**
 * The inverse of the per-name builders: `<head><tag-safe name>}:<tail>` → the name and the tail,
 * or undefined when `key` is not under `head`. The tag-safe name holds no raw `}`: the first one
 * ends it.
 */
export function splitTaggedKey(head: string, key: string): { name: string; tail: string } | undefined {
  if (!key.startsWith(head)) return undefined;
  const rest = key.slice(head.length);
  const end = rest.indexOf('}');
  if (end < 0 || rest[end + 1] !== ':') return undefined;
  return { name: untag(rest.slice(0, end)), tail: rest.slice(end + 2) };
}

/** The head every queue's keys share: `<prefix>{q:` then the tag-safe name and `}:`. */
export const queueHead = (prefix: string) => `${prefix}{q:`;

/**
 * events: one hash tag per channel. s (stream; entry id '<seq>-1'), n (sequence), live (the
 * pub/sub channel).
 */
export function eventKeys(prefix: string, channel: string) {
  const base = `${prefix}{e:${tagSafe(channel)}}:`;
  return { base, stream: `${base}s`, counter: `${base}${TAGGED_TAILS.eventCounter}`, live: `${base}live` };
}

/** The head every channel's keys share: `<prefix>{e:` then the tag-safe name and `}:`. */
export const eventHead = (prefix: string) => `${prefix}{e:`;

/**
 * tokens: one hash tag. h:<sha256> (the record as JSON, expiring with the token), ids (hash id →
 * sha256), issuers (hash id → the id of its issuer, for tokens that have one), c:<id> (set: ids
 * of the tokens <id> issued), order (zset, all scores 0: the position '<createdAt ISO>|<id>' of
 * every token in ids, for keyset pages by ZRANGEBYLEX), pos (hash id → its position). A token is
 * live while its h: key exists.
 */
export function tokenKeys(prefix: string) {
  const base = `${prefix}{t}:`;
  return {
    base,
    ids: `${base}ids`,
    order: `${base}order`,
    byHash: (hash: string) => `${base}h:${hash}`,
  };
}

/**
 * audit: one hash tag. log (stream of every entry), i:<identity> (stream of that identity's
 * entries, same ids), identities (set), sweep-cursor (where the sweep goes on in identities).
 */
export function auditKeys(prefix: string) {
  const base = `${prefix}{a}:`;
  return { base, log: `${base}log`, identities: `${base}identities` };
}

/** How long a dead connection's indexes outlive it, for the sweep to clean up. */
export const CONNECTION_GRACE_MS = 3_600_000;

/**
 * connections (the WebSocket relay's registry): every key under ONE hash tag, '{ws}', so one
 * script updates a connection and both directions of its subscriptions on Redis Cluster too
 * (no CROSSSLOT).
 *   conns            zset connection id → expiry ms (liveness for subscribers, and the sweep's index)
 *   conn:<id>        hash identity, scopes (JSON), resources (JSON), connected ms, exp ms,
 *                    token (its token's id), tokexp (the token's expiry ms, '' = never)
 *   chans:<id>       set of the connection's channels
 *   subs:<channel>   zset (all scores 0, so ZRANGEBYLEX pages in byte order) of subscribed ids
 *   tok:<token id>   zset (all scores 0) of the ids of connections opened with the token
 *   tokenof          hash connection id → token id (what the sweep needs once conn:<id> is gone)
 *   tokexp           zset connection id → its token's expiry ms (only tokens that expire)
 * A connection is live while exp > TIME. conn:<id> expires exactly then (PEXPIREAT); the sets
 * that the sweep needs to undo a connection's subscriptions live CONNECTION_GRACE_MS longer, and
 * conns, subs:<channel>, tok:<token id>, tokenof and tokexp as long as their latest member plus
 * CONNECTION_GRACE_MS, so Redis drops everything of a dead connection even when no sweep runs.
 */
export function connectionKeys(prefix: string) {
  const base = `${prefix}{ws}:`;
  return {
    base,
    conns: `${base}conns`,
    connection: (id: string) => `${base}conn:${id}`,
    channels: (id: string) => `${base}chans:${id}`,
  };
}

/**
 * A name inside a hash tag: `{`, `}` and `%` percent-encoded, so the tag ends where the key
 * layout says and two names never share a key (`a}:dd:z` is not queue `a`).
 */
export function tagSafe(name: string): string {
  return /[{}%]/.test(name)
    ? name.replace(/[{}%]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    : name;
}

/** The inverse of `tagSafe`: `%7B` `%7D` `%25` back to `{` `}` `%`. */
export function untag(name: string): string {
  return name.replace(/%(7B|7D|25)/g, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}
