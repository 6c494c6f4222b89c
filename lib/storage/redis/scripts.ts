/**
 * The Redis backend's scripts, typed: each one's KEYS and ARGV as tuples and its reply decoded
 * here, once. The programs are `lua/<name>.lua` (their headers say what KEYS, ARGV and the reply
 * hold), compiled into `scripts.generated.ts` by `npm run lua`.
 *
 * Every multi-step operation runs as one script, so it is atomic and one round trip. Scripts read
 * the clock with TIME, so every client agrees on expiry whatever its own clock says. A script
 * touches only keys of one hash tag (keys.ts): the keys it is given and keys it builds from the
 * `base` argument (the tag's prefix), as BullMQ does for job keys; so every script runs on Redis
 * Cluster and ElastiCache Serverless.
 *
 * User JSON never passes through Lua's cjson (it would round numbers to 14 digits): values are
 * stored and answered as the caller's JSON text.
 */

import { isoTime as iso } from '../driver.js';
import type { DeadMessage, ReceivedMessage } from '../types.js';
import { parseJson } from '../validate.js';
import type { RedisClient } from './client.js';
import { SESSION_FIELDS } from './keys.js';
import * as lua from './scripts.generated.js';

/** What a script answers, as ioredis hands it over. */
export type Reply = string | number | null | Reply[];
type Arg = string | number;
/** '' stands for "none" in script arguments. */
type Opt<T> = T | '';

interface Script<Keys extends readonly string[], Args extends readonly Arg[], Result> {
  lua: string;
  numberOfKeys: Keys['length'];
  decode(reply: Reply): Result;
  /** Types only: the KEYS and ARGV tuples. */
  readonly types?: { keys: Keys; args: Args };
}

const define = <Keys extends readonly string[], Args extends readonly Arg[], Result>(
  source: string,
  numberOfKeys: Keys['length'],
  decode: (reply: Reply) => Result,
): Script<Keys, Args, Result> => ({ lua: source, numberOfKeys, decode });

// Decoders: the only places a reply's shape is asserted.
const asText = (r: Reply) => r as string;
const asNumber = (r: Reply) => Number(r);
const isOne = (r: Reply) => r === 1;
const asTexts = (r: Reply) => r as string[];
/** {more, last looked at or '', …items}: one page of a keyset walk. */
const asPage = (r: Reply) => {
  const [more, last, ...items] = r as [number, string, ...string[]];
  return { items, last: last || undefined, more: more === 1 };
};
/** 1 done, 0 the receipt is stale, -1 no such message. */
const asLease = (r: Reply) => (r === -1 ? 'missing' : r === 0 ? 'stale' : 'ok');

type Key = [key: string];
type Clusters = [clusters: string];
type Ids = [ids: string];
type Conns = [conns: string];
/** A queue's base (keys.ts, queueKeys): its scripts build the queue's keys from it. */
type QueueBase = [base: string];
type Deliveries = [deliveries: string];
type ConsumerSets = [consumers: string, deliveries: string];
/** Flat hash field/value pairs, as HGETALL answers them. */
type Pairs = string[];

/** A session hash's fields (SESSION_FIELDS order); null where a field is missing. */
export type SessionFields = (string | null)[];

export const scripts = {
  kvGetEntry: define<Key, [], [text: string, pttl: number] | null>(
    lua.kvGetEntry,
    1,
    (r) => r as [string, number] | null,
  ),
  kvExpire: define<Key, [mode: '' | 'ttl' | 'at', ms: number], boolean>(lua.kvExpire, 1, isOne),
  kvIncr: define<Key, [by: number], number>(lua.kvIncr, 1, asNumber),

  sessionCreate: define<
    Clusters,
    [
      base: string,
      id: string,
      cluster: string,
      user: string,
      corr: string,
      svc: string,
      data: string,
      ttlMs: number,
      createdMs: Opt<number>,
      lastMs: Opt<number>,
      expMs: Opt<number>,
    ],
    [created: number, exp: number, last: number]
  >(lua.sessionCreate, 1, (r) => r as [number, number, number]),
  sessionKeepAlive: define<
    Clusters,
    [base: string, id: string, ttlMs: Opt<number>, lastMs: Opt<number>, expMs: Opt<number>],
    SessionFields | null
  >(lua.sessionKeepAlive, 1, (r) => r as SessionFields | null),
  sessionEnd: define<Clusters, [base: string, id: string], boolean>(lua.sessionEnd, 1, isOne),
  sessionList: define<[index: string], [base: string], { id: string; fields: SessionFields }[]>(
    lua.sessionList,
    1,
    (r) => {
      const flat = r as SessionFields;
      const out: { id: string; fields: SessionFields }[] = [];
      const width = 1 + SESSION_FIELDS.length;
      for (let i = 0; i < flat.length; i += width)
        out.push({ id: flat[i] as string, fields: flat.slice(i + 1, i + width) });
      return out;
    },
  ),
  sessionClusterPage: define<[clusters: string, names: string], [after: string, count: number], Page>(
    lua.sessionClusterPage,
    2,
    asPage,
  ),
  sessionSweep: define<Clusters, [base: string, batch: number], number>(lua.sessionSweep, 1, asNumber),

  queueSend: define<
    QueueBase,
    [id: string, payload: string, delayMs: number, dedupId: string, dedupWindowMs: number],
    { id: string; duplicate: boolean }
  >(lua.queueSend, 1, (r) => {
    const [id, duplicate] = r as [string, number];
    return { id, duplicate: duplicate === 1 };
  }),
  queueReceive: define<
    QueueBase,
    [
      max: number,
      visibilityMs: number,
      maxAttempts: number,
      receiptPrefix: string,
      waited: '1' | '',
      waitMs: number,
    ],
    /** dueInMs: until a delay passes or a lease ends, by Redis's clock; -1 = nothing due. */
    { messages: ReceivedMessage[]; dueInMs: number }
  >(lua.queueReceive, 1, (r) => {
    const reply = r as Reply[];
    const count = Number(reply[0]);
    const messages: ReceivedMessage[] = [];
    for (let i = 2; i < 2 + count * 5; i += 5) {
      messages.push({
        id: reply[i] as string,
        receipt: reply[i + 1] as string,
        payload: parseJson(reply[i + 2] as string),
        attempts: Number(reply[i + 3]),
        enqueuedAt: iso(reply[i + 4] as string),
      });
    }
    return { messages, dueInMs: Number(reply[1]) };
  }),
  queueWake: define<QueueBase, [waited: '1' | '', wake: '1' | ''], number>(lua.queueWake, 1, asNumber),
  queueAck: define<QueueBase, [id: string, receipt: string], LeaseOutcome>(lua.queueAck, 1, asLease),
  queueNack: define<
    QueueBase,
    [id: string, receipt: string, delayMs: number, maxAttempts: number],
    LeaseOutcome
  >(lua.queueNack, 1, asLease),
  queueExtend: define<QueueBase, [id: string, receipt: string, visibilityMs: number], LeaseOutcome>(
    lua.queueExtend,
    1,
    asLease,
  ),
  queueStats: define<
    QueueBase,
    [maxAttempts: number],
    { depth: number; delayed: number; inFlight: number; dead: number }
  >(lua.queueStats, 1, (r) => {
    const [depth, delayed, inFlight, dead] = r as number[];
    return { depth: Number(depth), delayed: Number(delayed), inFlight: Number(inFlight), dead: Number(dead) };
  }),
  queueDeadLetters: define<QueueBase, [maxAttempts: number, limit: number], DeadMessage[]>(
    lua.queueDeadLetters,
    1,
    (r) => {
      const flat = r as string[];
      const out: DeadMessage[] = [];
      for (let i = 0; i < flat.length; i += 5) {
        out.push({
          id: flat[i] as string,
          payload: parseJson(flat[i + 1] as string),
          attempts: Number(flat[i + 2]),
          enqueuedAt: iso(flat[i + 3] as string),
          diedAt: iso(flat[i + 4] as string),
        });
      }
      return out;
    },
  ),
  queueRedrive: define<QueueBase, [maxAttempts: number, limit: number], number>(
    lua.queueRedrive,
    1,
    asNumber,
  ),

  eventPublish: define<
    [stream: string, counter: string],
    [json: string, maxHistory: number, live: string],
    { seq: number; publishedMs: number }
  >(lua.eventPublish, 2, (r) => {
    const head = r as string;
    const at = head.indexOf(':');
    return { seq: Number(head.slice(0, at)), publishedMs: Number(head.slice(at + 1)) };
  }),

  tokenInsert: define<
    Ids,
    [
      base: string,
      id: string,
      hash: string,
      record: string,
      expiresAtMs: Opt<number>,
      issuerId: string,
      position: string,
    ],
    boolean
  >(lua.tokenInsert, 1, isOne),
  tokenGet: define<Ids, [base: string, id: string], string | null>(
    lua.tokenGet,
    1,
    (r) => r as string | null,
  ),
  tokenPage: define<[ids: string, order: string], [base: string, after: string, count: number], Page>(
    lua.tokenPage,
    2,
    asPage,
  ),
  tokenRevoke: define<Ids, [base: string, id: string], string[]>(lua.tokenRevoke, 1, asTexts),
  tokenList: define<Ids, [base: string], string[]>(lua.tokenList, 1, asTexts),

  auditAppend: define<
    [log: string, identities: string],
    [
      base: string,
      maxEntries: number,
      maxAgeMs: number,
      identity: string,
      action: string,
      resource: string,
      correlationId: string,
      outcome: string,
      details: string,
    ],
    string
  >(lua.auditAppend, 2, asText),
  auditQuery: define<
    [log: string],
    [
      base: string,
      identity: string,
      sinceMs: Opt<number>,
      untilMs: Opt<number>,
      limit: number,
      order: string,
      maxAgeMs: number,
    ],
    StreamEntry[]
  >(lua.auditQuery, 1, (r) => r as StreamEntry[]),
  auditSweep: define<
    [log: string, identities: string],
    [base: string, maxAgeMs: number, batch: number],
    number
  >(lua.auditSweep, 2, asNumber),

  connectionRegister: define<
    Conns,
    [
      base: string,
      id: string,
      identity: string,
      scopes: string,
      resources: string,
      ttlMs: number,
      tokenId: string,
      tokenExpiresAtMs: Opt<number>,
      maxPerToken: Opt<number>,
    ],
    { connectedMs: number; expMs: number } | 'full'
  >(lua.connectionRegister, 1, (r) => {
    if (r === 0) return 'full';
    const [connectedMs, expMs] = r as [number, number];
    return { connectedMs, expMs };
  }),
  connectionGet: define<Conns, [base: string, id: string], StoredConnection | null>(
    lua.connectionGet,
    1,
    (r) => {
      if (r === null) return null;
      const [identity, scopes, resources, connected, exp, tokenId, tokenExp, channels] = r as [
        string,
        string,
        string,
        string,
        string,
        string,
        string,
        string[],
      ];
      return { identity, scopes, resources, connected, exp, tokenId, tokenExp, channels };
    },
  ),
  connectionSubscribe: define<
    Conns,
    [base: string, id: string, channel: string, maxChannels: number],
    'subscribed' | 'full' | 'unknown'
  >(lua.connectionSubscribe, 1, (r) => {
    const reply = Number(r);
    return reply === 1 ? 'subscribed' : reply === -1 ? 'full' : 'unknown';
  }),
  connectionUnsubscribe: define<Conns, [base: string, id: string, channel: string], boolean>(
    lua.connectionUnsubscribe,
    1,
    isOne,
  ),
  connectionSubscribers: define<
    Conns,
    [base: string, channel: string, after: string, limit: number],
    string[]
  >(lua.connectionSubscribers, 1, asTexts),
  connectionRemove: define<Conns, [base: string, id: string], boolean>(lua.connectionRemove, 1, isOne),
  connectionSweep: define<Conns, [base: string, batch: number], number>(lua.connectionSweep, 1, asNumber),
  connectionsOfToken: define<Conns, [base: string, tokenId: string, after: string, limit: number], string[]>(
    lua.connectionsOfToken,
    1,
    asTexts,
  ),
  connectionsWithExpiredToken: define<Conns, [base: string, limit: number], string[]>(
    lua.connectionsWithExpiredToken,
    1,
    asTexts,
  ),

  consumerRegister: define<
    [consumers: string],
    [connection: string, max: number, visibilityMs: number],
    void
  >(lua.consumerRegister, 1, () => undefined),
  consumerClaim: define<
    ConsumerSets,
    [slot: string, nowMs: number],
    { connectionId: string; visibilityMs: number } | undefined
  >(lua.consumerClaim, 2, (r) => {
    if (!r) return undefined;
    const [connectionId, visibilityMs] = r as [string, string];
    return { connectionId, visibilityMs: Number(visibilityMs) };
  }),
  consumerBind: define<Deliveries, [slot: string, id: string, receipt: string, leaseEndsMs: number], boolean>(
    lua.consumerBind,
    1,
    isOne,
  ),
  consumerRelease: define<Deliveries, [key: string], string | undefined>(lua.consumerRelease, 1, (r) =>
    typeof r === 'string' ? r : undefined,
  ),
  consumerExtend: define<Deliveries, [id: string, leaseEndsMs: number], boolean>(
    lua.consumerExtend,
    1,
    isOne,
  ),
  consumerStop: define<
    ConsumerSets,
    [connection: string, nowMs: number],
    { consumersLeft: number; held: { id: string; receipt: string }[] }
  >(lua.consumerStop, 2, (r) => {
    const [left, ...pairs] = r as [number, ...string[]];
    const held: { id: string; receipt: string }[] = [];
    for (let i = 0; i < pairs.length; i += 2) held.push({ id: pairs[i]!, receipt: pairs[i + 1]! });
    return { consumersLeft: Number(left), held };
  }),
  consumerList: define<ConsumerSets, [], { consumers: Pairs; deliveries: Pairs }>(
    lua.consumerList,
    2,
    (r) => {
      const [consumers, deliveries] = r as [Pairs, Pairs];
      return { consumers, deliveries };
    },
  ),
};

type Page = ReturnType<typeof asPage>;
type LeaseOutcome = ReturnType<typeof asLease>;
/** An XRANGE entry: id and flat field/value pairs. */
export type StreamEntry = [id: string, fields: string[]];
/** A connection hash as connectionGet answers it (token fields '' for old registrations). */
export interface StoredConnection {
  identity: string;
  scopes: string;
  resources: string;
  connected: string;
  exp: string;
  tokenId: string;
  tokenExp: string;
  channels: string[];
}

export type ScriptName = keyof typeof scripts;
type Types<N extends ScriptName> = NonNullable<(typeof scripts)[N]['types']>;
export type ScriptArgs<N extends ScriptName> = Types<N>['args'];

/** Runs a script by name: KEYS and ARGV checked against its definition, the reply decoded. */
export type ScriptCaller = <N extends ScriptName>(
  name: N,
  keys: Types<N>['keys'],
  args: Types<N>['args'],
) => Promise<ReturnType<(typeof scripts)[N]['decode']>>;

/** Defines every script on the client (EVALSHA, loading on NOSCRIPT) and answers their caller. */
export function scriptCaller(client: RedisClient): ScriptCaller {
  for (const [name, script] of Object.entries(scripts)) {
    client.defineCommand(`kst_${name}`, { numberOfKeys: script.numberOfKeys, lua: script.lua });
  }
  const commands = client as unknown as Record<string, (...a: Arg[]) => Promise<Reply>>;
  // Bound once: a call then only spreads its arguments (no name lookup or string building).
  const bound = new Map<ScriptName, (...a: Arg[]) => Promise<Reply>>();
  for (const name of Object.keys(scripts) as ScriptName[])
    bound.set(name, commands[`kst_${name}`]!.bind(client));
  return (name, keys, args) =>
    bound.get(name)!(...keys, ...args).then(
      scripts[name].decode as (reply: Reply) => ReturnType<(typeof scripts)[typeof name]['decode']>,
    );
}
