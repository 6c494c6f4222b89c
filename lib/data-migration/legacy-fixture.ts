/**
 * Writes an upstream (Python) Kubently database into Redis, the way the upstream service leaves
 * it (see the mapping in `legacy.ts`): to try the legacy import, and for its tests. Values are
 * what `json.dumps` writes (`{"a": 1, "b": null}`, non-ASCII escaped), times what
 * `datetime.now(UTC).isoformat()` writes (`+00:00`, microseconds unless they are zero), TTLs as
 * the service sets them. Its history is simulated in time order: sessions created, kept alive,
 * ended or left to expire; executors connecting; commands run and audited. So the derived keys
 * carry what a live deployment's carry, stale index entries included: `sessions:active` members
 * of sessions that expired, a `cluster:session:*` still naming one, correlation sets holding one.
 *
 * The same options and seed write the same database (relative to the server's clock). Writes
 * are pipelined; 10k sessions take well under a second on a local Redis.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { notMigrated, STALE_REASONS } from './legacy.js';

export interface LegacyFixtureOptions {
  /** In front of every key (default none, as upstream). */
  prefix?: string;
  /** Live sessions (default 200); a tenth as many again ended or expired. */
  sessions?: number;
  /** Clusters with an executor token (default 5). */
  clusters?: number;
  seed?: number;
  /** Entries of `auth:audit` (default 200, at most 10000 as upstream trims it). */
  auditEntries?: number;
  /** Entries of `session:events` (default and at most 1000 as upstream trims it, fewer if fewer happened). */
  events?: number;
}

export interface LegacyManifest {
  prefix: string;
  /** What the import answers per store. */
  counts: { kv: number; sessions: number; tokens: number; events: number; audit: number };
  /** What the import skips, by the reason it reports (kv families left behind, stale index entries). */
  skipped: Record<string, number>;
  /** The secrets, so a test can prove the imported hashes verify. */
  tokens: { executor: Record<string, string>; apiKeys: Record<string, string> };
  clusters: string[];
  /** Clusters with a capabilities report. */
  capabilities: string[];
  /** Live sessions, oldest first (at most 1000 listed). */
  liveSessions: { sessionId: string; clusterId: string; correlationId: string | null }[];
}

const SESSION_TTL = 3600;
const CAPABILITY_TTL = 3600;
const SECOND = 1_000_000; // times here are epoch microseconds, as Python keeps them

/** `json.dumps(value)`: `", "` and `": "` separators, non-ASCII as `\uXXXX`. */
export function pythonJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string')
    return JSON.stringify(value).replace(
      /[\u007f-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  return `{${Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => `${pythonJson(k)}: ${pythonJson(v)}`)
    .join(', ')}}`;
}

/** `datetime.isoformat()` of a UTC time in epoch microseconds; `naive` leaves the offset out. */
export function pythonIso(us: number, naive = false): string {
  const ms = Math.floor(us / 1000);
  const micros = us - Math.floor(us / SECOND) * SECOND;
  const base = new Date(ms).toISOString().slice(0, 19);
  const fraction = micros === 0 ? '' : `.${String(micros).padStart(6, '0')}`;
  return `${base}${fraction}${naive ? '' : '+00:00'}`;
}

/** mulberry32: small, seeded, good enough for test data. */
function generator(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const hex = (n: number) => Array.from({ length: n }, () => int(0, 15).toString(16)).join('');
  return {
    next,
    int,
    hex,
    pick: <T>(items: readonly T[]): T => items[int(0, items.length - 1)]!,
    uuid: () => {
      const h = hex(32).split('');
      h[12] = '4';
      h[16] = '89ab'[int(0, 3)]!;
      const s = h.join('');
      return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
    },
  };
}

interface SessionSpec {
  id: string;
  cluster: string;
  user: string;
  service: string;
  correlation: string | null;
  createdUs: number;
  lastUs: number;
  commands: number;
  fate: 'live' | 'expired' | 'ended';
  endedUs?: number;
}

/** A key's state at the end of the simulated history. */
interface Slot {
  value: string;
  expiresUs: number;
}

/** What every part of the fixture writes with: the seeded generator, the server's time, batched commands. */
class FixtureWriter {
  readonly skipped: Record<string, number> = {};
  private pipeline: ReturnType<Redis['pipeline']>;
  private queued = 0;

  constructor(
    private readonly client: Redis,
    readonly prefix: string,
    readonly rng: ReturnType<typeof generator>,
    /** The server's time, epoch microseconds. */
    readonly now: number,
  ) {
    this.pipeline = client.pipeline();
  }

  /** Queues commands; they go out in pipelines of a few thousand. */
  async send(build: (pl: ReturnType<Redis['pipeline']>) => void, n = 1): Promise<void> {
    build(this.pipeline);
    this.queued += n;
    if (this.queued >= 2000) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.queued === 0) return;
    const results = await this.pipeline.exec();
    for (const [error] of results ?? []) if (error) throw error;
    this.pipeline = this.client.pipeline();
    this.queued = 0;
  }

  /** Writes a string that expires at `expiresUs` (the time left, as the service's TTL left it). */
  setUntil(key: string, value: string, expiresUs: number): Promise<void> {
    return this.send((pl) =>
      pl.set(`${this.prefix}${key}`, value, 'PX', Math.max(1, Math.floor((expiresUs - this.now) / 1000))),
    );
  }

  /** Counts items the import is expected to skip, by reason. */
  count(reason: string, n = 1): void {
    if (n > 0) this.skipped[reason] = (this.skipped[reason] ?? 0) + n;
  }
}

const USERS = ['anonymous', 'alice@example.com', 'bob@example.com', 'oncall@example.com'];
const IDENTITIES = ['tenant:abc', 'tenant:def', 'service:control-plane'];
const SERVICES = ['direct', 'service:a2a-agent', ...IDENTITIES];

export async function writeLegacyFixture(
  client: Redis,
  options: LegacyFixtureOptions = {},
): Promise<LegacyManifest> {
  const liveCount = options.sessions ?? 200;
  const [seconds, micros] = await client.time();
  const ctx = new FixtureWriter(
    client,
    options.prefix ?? '',
    generator(options.seed ?? 1),
    Number(seconds) * SECOND + Number(micros),
  );
  // The parts in this order: each draws from the one seeded generator.
  const { clusters, executor, apiKeys } = await writeTokens(ctx, Math.max(1, options.clusters ?? 5));
  const { sessions, correlations } = planSessions(ctx, clusters, liveCount);
  const derived = replaySessions(ctx, sessions, clusters);
  let kv = await writeSessionKeys(ctx, sessions, derived);
  const events = await writeSessionEvents(ctx, sessions, Math.min(options.events ?? 1000, 1000));
  const kvFamilies = await writeKvFamilies(ctx, clusters);
  kv += kvFamilies.kv;
  await writeLeftBehind(ctx, clusters);
  const liveList = sessions.filter((s) => s.fate === 'live');
  const audit = await writeAudit(ctx, {
    liveList,
    clusters,
    correlations,
    auditCount: Math.min(options.auditEntries ?? 200, 10_000),
  });
  await ctx.flush();

  return {
    prefix: ctx.prefix,
    counts: {
      kv,
      sessions: liveList.length,
      tokens: clusters.length + IDENTITIES.length,
      events,
      audit,
    },
    skipped: ctx.skipped,
    tokens: { executor, apiKeys },
    clusters,
    capabilities: kvFamilies.capabilities,
    liveSessions: liveList
      .slice(0, 1000)
      .map((s) => ({ sessionId: s.id, clusterId: s.cluster, correlationId: s.correlation })),
  };
}

/** Clusters, their executor tokens, and API keys. */
async function writeTokens(ctx: FixtureWriter, clusterCount: number) {
  const { rng } = ctx;
  const envs = ['prod', 'staging', 'dev', 'qa'];
  const regions = ['eu', 'us', 'ap'];
  const clusters = Array.from(
    { length: clusterCount },
    (_, i) => `${envs[i % envs.length]}-${regions[Math.floor(i / envs.length) % regions.length]}-${i + 1}`,
  );
  const executor: Record<string, string> = {};
  clusters.forEach((cluster, i) => {
    // `secrets.token_hex(32)` from the admin API; one set by hand through the Helm chart.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
    executor[cluster] =
      i === 1
        ? Array.from({ length: 48 }, () => alphabet[rng.int(0, alphabet.length - 1)]).join('')
        : rng.hex(64);
  });
  for (const cluster of clusters)
    await ctx.send((pl) => pl.set(`${ctx.prefix}executor:token:${cluster}`, executor[cluster]!));

  const apiKeys: Record<string, string> = {};
  for (const identity of IDENTITIES) {
    const plaintext = `kk_${rng.hex(40)}`;
    apiKeys[plaintext] = identity;
    const hash = createHash('sha256').update(plaintext).digest('hex');
    await ctx.send((pl) => pl.set(`${ctx.prefix}api:key:${hash}`, identity));
  }

  return { clusters, executor, apiKeys };
}

/** The sessions of the simulated history: live, expired by TTL, ended, and the scenarios below. */
function planSessions(ctx: FixtureWriter, clusters: string[], liveCount: number) {
  const { rng, now } = ctx;
  const correlations = Array.from(
    { length: Math.max(1, Math.ceil(liveCount / 10)) },
    () => `corr-${rng.hex(12)}`,
  );
  // The last cluster (of two or more) is quiet: only the two sessions of the scenario below.
  const busy = clusters.length > 1 ? clusters.slice(0, -1) : clusters;
  const spec = (fate: SessionSpec['fate'], createdUs: number): SessionSpec => {
    const keptAlive = fate === 'live' && rng.next() < 0.6;
    const lastUs = keptAlive ? createdUs + rng.int(1, Math.max(1, now - createdUs - 60 * SECOND)) : createdUs;
    return {
      id: rng.uuid(),
      cluster: rng.pick(busy),
      user: rng.pick(USERS),
      service: rng.pick(SERVICES),
      correlation: rng.next() < 0.15 ? rng.pick(correlations) : null,
      createdUs,
      lastUs,
      commands: keptAlive ? rng.int(1, 20) : 0,
      fate,
    };
  };
  const sessions: SessionSpec[] = [];
  for (let i = 0; i < liveCount; i++) sessions.push(spec('live', now - rng.int(60 * SECOND, 3000 * SECOND)));
  // Left to expire by TTL (an hour without keep-alive), and ended through the API.
  for (let i = 0; i < Math.ceil(liveCount / 20); i++)
    sessions.push(spec('expired', now - rng.int(3700 * SECOND, 7000 * SECOND)));
  for (let i = 0; i < Math.ceil(liveCount / 20); i++) {
    const s = spec('ended', now - rng.int(120 * SECOND, 3000 * SECOND));
    s.endedUs = s.createdUs + rng.int(10 * SECOND, Math.max(10 * SECOND, now - s.createdUs - 60 * SECOND));
    sessions.push(s);
  }
  if (clusters.length > 1 && liveCount > 0) {
    // A long investigation kept alive for hours, and a session opened on the same cluster and
    // correlation after it and then abandoned: the keep-alives of the first refresh
    // cluster:session and the correlation set, which still name the second after it expired.
    const quiet = clusters[clusters.length - 1]!;
    const corr = `corr-${rng.hex(12)}`;
    const long = spec('live', now - 6000 * SECOND - rng.int(0, 999_999));
    Object.assign(long, { cluster: quiet, correlation: corr, lastUs: now - 100 * SECOND, commands: 42 });
    const abandoned = spec('expired', now - 5000 * SECOND - rng.int(0, 999_999));
    Object.assign(abandoned, { cluster: quiet, correlation: corr });
    sessions.splice(0, 1, long);
    sessions.push(abandoned);
  }
  if (liveCount > 1) {
    // The newest session, with no command run since: its cluster:active holds its id.
    const fresh = spec('live', now - rng.int(10, 50) * SECOND);
    Object.assign(fresh, { cluster: busy[0], lastUs: fresh.createdUs, commands: 0 });
    sessions.splice(1, 1, fresh);
  }
  sessions.sort((a, b) => a.createdUs - b.createdUs);

  return { sessions, correlations };
}

const sessionData = (s: SessionSpec, lastUs: number, commands: number) => ({
  session_id: s.id,
  cluster_id: s.cluster,
  user_id: s.user,
  service_identity: s.service,
  correlation_id: s.correlation,
  created_at: pythonIso(s.createdUs),
  expires_at: pythonIso(s.createdUs + SESSION_TTL * SECOND),
  last_activity: pythonIso(lastUs),
  command_count: commands,
  ttl: SESSION_TTL,
});

/** The derived keys' state at the end of the history. */
interface DerivedKeys {
  active: Map<string, Slot>;
  clusterSession: Map<string, Slot>;
  correlationSets: Map<string, { members: Set<string>; expiresUs: number }>;
  activeSet: Set<string>;
}

/** Replays the sessions' effects on the derived keys in time order. */
function replaySessions(ctx: FixtureWriter, sessions: SessionSpec[], clusters: string[]): DerivedKeys {
  const { rng, now } = ctx;
  type Op = {
    at: number;
    kind: 'create' | 'keepalive' | 'end' | 'sse' | 'execute';
    s?: SessionSpec;
    cluster: string;
  };
  const ops: Op[] = [];
  for (const s of sessions) {
    ops.push({ at: s.createdUs, kind: 'create', s, cluster: s.cluster });
    // Keep-alives at least every half hour up to the last one (each one refreshes the derived keys).
    for (let at = s.createdUs + 1800 * SECOND; at < s.lastUs; at += 1800 * SECOND)
      ops.push({ at, kind: 'keepalive', s, cluster: s.cluster });
    if (s.lastUs > s.createdUs) ops.push({ at: s.lastUs, kind: 'keepalive', s, cluster: s.cluster });
    if (s.endedUs !== undefined) ops.push({ at: s.endedUs, kind: 'end', s, cluster: s.cluster });
  }
  clusters.forEach((cluster, i) => {
    // Executors connected over SSE, and a command run without a session.
    if (i % 3 === 0) ops.push({ at: now - rng.int(1, 10) * SECOND, kind: 'sse', cluster });
    if (i % 4 === 1) ops.push({ at: now - rng.int(1, 5) * SECOND, kind: 'execute', cluster });
  });
  ops.sort((a, b) => a.at - b.at);
  const active = new Map<string, Slot>();
  const clusterSession = new Map<string, Slot>();
  const correlationSets = new Map<string, { members: Set<string>; expiresUs: number }>();
  const activeSet = new Set<string>();
  const live = (slot: Slot | undefined, at: number) => slot !== undefined && slot.expiresUs > at;
  for (const op of ops) {
    const ttl = SESSION_TTL * SECOND;
    switch (op.kind) {
      case 'create': {
        const s = op.s!;
        active.set(op.cluster, { value: s.id, expiresUs: op.at + ttl });
        activeSet.add(s.id);
        clusterSession.set(op.cluster, { value: s.id, expiresUs: op.at + ttl });
        if (s.correlation) {
          const set = correlationSets.get(s.correlation);
          if (set && set.expiresUs > op.at) {
            set.members.add(s.id);
            set.expiresUs = op.at + ttl;
          } else correlationSets.set(s.correlation, { members: new Set([s.id]), expiresUs: op.at + ttl });
        }
        break;
      }
      case 'keepalive': {
        // /debug/execute: SETEX cluster:active 60 "1", then the keep-alive EXPIREs it to the session ttl.
        const s = op.s!;
        active.set(op.cluster, { value: '1', expiresUs: op.at + ttl });
        const cs = clusterSession.get(op.cluster);
        if (live(cs, op.at)) cs!.expiresUs = op.at + ttl;
        const set = s.correlation ? correlationSets.get(s.correlation) : undefined;
        if (set && set.expiresUs > op.at) set.expiresUs = op.at + ttl;
        break;
      }
      case 'end': {
        const s = op.s!;
        active.delete(op.cluster);
        clusterSession.delete(op.cluster);
        activeSet.delete(s.id);
        if (s.correlation) correlationSets.get(s.correlation)?.members.delete(s.id);
        break;
      }
      case 'sse':
        if (!live(active.get(op.cluster), op.at))
          active.set(op.cluster, { value: '1', expiresUs: op.at + 90 * SECOND });
        break;
      case 'execute':
        active.set(op.cluster, { value: '1', expiresUs: op.at + 60 * SECOND });
        break;
    }
  }

  return { active, clusterSession, correlationSets, activeSet };
}

/** The live sessions and the derived keys still alive; answers how many kv keys it wrote. */
async function writeSessionKeys(
  ctx: FixtureWriter,
  sessions: SessionSpec[],
  derived: DerivedKeys,
): Promise<number> {
  const { now } = ctx;
  const { active, clusterSession, correlationSets, activeSet } = derived;
  const liveIds = new Set(sessions.filter((s) => s.fate === 'live').map((s) => s.id));
  for (const s of sessions) {
    if (s.fate !== 'live') continue;
    const remaining = s.lastUs + SESSION_TTL * SECOND;
    await ctx.setUntil(`session:${s.id}`, pythonJson(sessionData(s, s.lastUs, s.commands)), remaining);
  }
  let kv = 0;
  for (const [cluster, slot] of active) {
    if (slot.expiresUs <= now) continue;
    await ctx.setUntil(`cluster:active:${cluster}`, slot.value, slot.expiresUs);
    kv += 1;
  }
  for (const [cluster, slot] of clusterSession) {
    if (slot.expiresUs <= now) continue;
    await ctx.setUntil(`cluster:session:${cluster}`, slot.value, slot.expiresUs);
    if (!liveIds.has(slot.value)) ctx.count(STALE_REASONS.cluster);
  }
  for (const [corr, set] of correlationSets) {
    if (set.expiresUs <= now || set.members.size === 0) continue;
    const members = [...set.members];
    await ctx.send((pl) => pl.sadd(`${ctx.prefix}correlation:${corr}:sessions`, ...members));
    await ctx.send((pl) =>
      pl.pexpire(`${ctx.prefix}correlation:${corr}:sessions`, Math.floor((set.expiresUs - now) / 1000)),
    );
    ctx.count(STALE_REASONS.correlation, members.filter((m) => !liveIds.has(m)).length);
  }
  const activeMembers = [...activeSet];
  for (let i = 0; i < activeMembers.length; i += 1000) {
    const chunk = activeMembers.slice(i, i + 1000);
    await ctx.send((pl) => pl.sadd(`${ctx.prefix}sessions:active`, ...chunk));
  }
  ctx.count(STALE_REASONS.active, activeMembers.filter((m) => !liveIds.has(m)).length);

  return kv;
}

/** session:events: created and ended events, newest first, the last `eventCap` kept; answers how many. */
async function writeSessionEvents(
  ctx: FixtureWriter,
  sessions: SessionSpec[],
  eventCap: number,
): Promise<number> {
  const events: { at: number; text: string }[] = [];
  for (const s of sessions.slice(-2 * eventCap)) {
    events.push({
      at: s.createdUs,
      text: pythonJson({
        type: 'session.created',
        timestamp: pythonIso(s.createdUs),
        data: sessionData(s, s.createdUs, 0),
      }),
    });
    if (s.endedUs !== undefined) {
      const data = {
        session_id: s.id,
        cluster_id: s.cluster,
        correlation_id: s.correlation,
        service_identity: s.service,
        ended_at: pythonIso(s.endedUs),
      };
      events.push({
        at: s.endedUs,
        text: pythonJson({ type: 'session.ended', timestamp: pythonIso(s.endedUs + 3), data }),
      });
    }
  }
  events.sort((a, b) => a.at - b.at);
  const kept = events.slice(-eventCap);
  for (let i = 0; i < kept.length; i += 500) {
    const chunk = kept.slice(i, i + 500).map((e) => e.text);
    await ctx.send((pl) => pl.lpush(`${ctx.prefix}session:events`, ...chunk));
  }
  if (kept.length > 0) await ctx.send((pl) => pl.ltrim(`${ctx.prefix}session:events`, 0, 999));

  return kept.length;
}

/** Capabilities reports and command results (kv families); answers the clusters with capabilities and the keys written. */
async function writeKvFamilies(ctx: FixtureWriter, clusters: string[]) {
  const { rng, now } = ctx;
  let kv = 0;
  const capabilities = clusters.length > 1 ? clusters.slice(0, -1) : clusters;
  for (const cluster of capabilities) {
    const reported = now - rng.int(60, 3000) * SECOND - rng.int(0, 999_999);
    const heartbeat =
      rng.next() < 0.5 ? reported : reported + rng.int(1, Math.floor((now - reported) / SECOND)) * SECOND;
    const mode = rng.pick(['readOnly', 'extendedReadOnly', 'fullAccess']);
    const report = {
      cluster_id: cluster,
      mode,
      allowed_verbs: ['get', 'list', 'describe', 'logs', 'top', 'events'],
      restricted_resources: ['secrets'],
      allowed_flags: ['-n', '--namespace', '-o', '--output', '-l', '--selector', '--tail'],
      executor_version: '2.4.1',
      executor_pod: `kubently-executor-${rng.hex(10)}-${rng.hex(5)}`,
      reported_at: pythonIso(reported),
      expires_at: pythonIso(heartbeat + CAPABILITY_TTL * SECOND),
      features: { exec: mode === 'fullAccess', port_forward: false, proxy: false },
      cloud: cluster.startsWith('prod')
        ? {
            provider: 'aws',
            identity: 'arn:aws:iam::123456789012:role/kubently',
            operations: ['eks:DescribeCluster'],
          }
        : null,
    };
    await ctx.setUntil(
      `cluster:${cluster}:capabilities`,
      pythonJson(report),
      heartbeat + CAPABILITY_TTL * SECOND,
    );
    kv += 1;
  }
  for (let i = 0; i < 4; i++) {
    const command = rng.uuid();
    const cluster = rng.pick(clusters);
    const bound = now - rng.int(1, 5) * SECOND;
    await ctx.setUntil(`command:cluster:${command}`, cluster, bound + 120 * SECOND);
    kv += 1;
    if (i === 3) continue; // still running: no result yet
    const executed = bound + rng.int(100_000, 900_000);
    const result = {
      command_id: command,
      success: i !== 2,
      output:
        i !== 2
          ? 'NAME                     READY   STATUS    RESTARTS   AGE\napi-7d9c8b6f5-x2x4k      1/1     Running   0          3d\n'
          : null,
      error: i === 2 ? 'Error from server (Forbidden): pods is forbidden' : null,
      exit_code: i === 2 ? 1 : 0,
      execution_time_ms: rng.int(40, 900),
      // An executor that left out executed_at gets pydantic's naive utcnow().
      executed_at: pythonIso(executed, i === 1),
      stored_at: pythonIso(executed + 2_000),
    };
    await ctx.setUntil(`result:${command}`, pythonJson(result), executed + 2_000 + 60 * SECOND);
    kv += 1;
  }

  return { capabilities, kv };
}

/** Keys the import leaves behind (metrics, checkpoints, incidents). */
async function writeLeftBehind(ctx: FixtureWriter, clusters: string[]): Promise<void> {
  const { rng, now } = ctx;
  await ctx.send((pl) => pl.set(`${ctx.prefix}metrics:commands_timeout:global`, '2', 'EX', 86_400));
  await ctx.send((pl) => pl.set(`${ctx.prefix}metrics:commands_queued:${clusters[0]}`, '5', 'EX', 86_400));
  ctx.count(notMigrated('metrics:*'), 2);
  const thread = rng.uuid();
  const week = 7 * 86_400;
  await ctx.send((pl) =>
    pl
      .hset(`${ctx.prefix}kubently:ckpt:cp:${thread}::cp-1`, { checkpoint: 'eyJ2IjogMX0=', metadata: '{}' })
      .expire(`${ctx.prefix}kubently:ckpt:cp:${thread}::cp-1`, week),
  );
  await ctx.send((pl) =>
    pl
      .zadd(`${ctx.prefix}kubently:ckpt:idx:${thread}:`, 0, 'cp-1')
      .expire(`${ctx.prefix}kubently:ckpt:idx:${thread}:`, week),
  );
  await ctx.send((pl) =>
    pl
      .sadd(`${ctx.prefix}kubently:ckpt:threadkeys:${thread}`, `kubently:ckpt:cp:${thread}::cp-1`)
      .expire(`${ctx.prefix}kubently:ckpt:threadkeys:${thread}`, week),
  );
  ctx.count(notMigrated('kubently:ckpt:*'), 3);
  const incidentAt = Math.floor(now / SECOND) - 3600;
  await ctx.send((pl) =>
    pl.set(
      `${ctx.prefix}kubently:incidents:rec:default:inc-1`,
      pythonJson({
        id: 'inc-1',
        namespace: 'default',
        summary: 'CrashLoopBackOff in api',
        created_at: incidentAt,
      }),
      'EX',
      90 * 86_400,
    ),
  );
  await ctx.send((pl) =>
    pl
      .zadd(`${ctx.prefix}kubently:incidents:idx:default`, incidentAt, 'inc-1')
      .expire(`${ctx.prefix}kubently:incidents:idx:default`, 90 * 86_400),
  );
  ctx.count(notMigrated('kubently:incidents:*'), 2);
}

/** The audit lists; answers how many entries were written. */
async function writeAudit(
  ctx: FixtureWriter,
  history: { liveList: SessionSpec[]; clusters: string[]; correlations: string[]; auditCount: number },
): Promise<number> {
  const { rng, now } = ctx;
  const { liveList, clusters, correlations, auditCount } = history;
  const commands = [
    'get pods -n default',
    'describe deployment api -n prod',
    'logs api-7d9c8b6f5-x2x4k -n prod --tail 100',
    'get events -n kube-system',
  ];
  const audit: string[] = [];
  for (let i = 0; i < auditCount; i++) {
    const at = now - Math.floor(((auditCount - i) / (auditCount + 1)) * 3500 * SECOND) - rng.int(0, 999_999);
    // The oldest entries come from a release that wrote naive timestamps.
    const stamp = pythonIso(at, i < 2);
    if (i % 2 === 0) {
      const session = liveList.length > 0 && rng.next() < 0.5 ? rng.pick(liveList) : undefined;
      const roll = rng.next();
      const outcome = roll < 0.7 ? 'success' : roll < 0.9 ? 'failure' : 'timeout';
      audit.push(
        pythonJson({
          type: 'command_executed',
          data: {
            service_identity: rng.next() < 0.1 ? null : (session?.service ?? rng.pick(SERVICES)),
            cluster_id: session?.cluster ?? rng.pick(clusters),
            session_id: session?.id ?? null,
            command_id: rng.uuid(),
            command: rng.pick(commands),
            outcome,
            error:
              outcome === 'failure'
                ? 'error: the server doesn\u2019t have a resource type "pod"'
                : outcome === 'timeout'
                  ? 'timed out after 30s'
                  : null,
            timestamp: stamp,
          },
          correlation_id: session?.correlation ?? (rng.next() < 0.2 ? rng.pick(correlations) : null),
          timestamp: stamp,
        }),
      );
    } else {
      const dynamic = rng.next() < 0.5;
      const data = dynamic
        ? { service_identity: rng.pick(IDENTITIES), dynamic: true, timestamp: pythonIso(at + 7, i < 2) }
        : {
            service_identity: rng.next() < 0.3 ? null : 'service:a2a-agent',
            timestamp: pythonIso(at + 5, i < 2),
          };
      audit.push(pythonJson({ type: 'api_key_verified', data, correlation_id: null, timestamp: stamp }));
    }
  }
  for (let i = 0; i < audit.length; i += 500) {
    const chunk = audit.slice(i, i + 500);
    await ctx.send((pl) => pl.lpush(`${ctx.prefix}auth:audit`, ...chunk));
  }
  if (audit.length > 0) await ctx.send((pl) => pl.ltrim(`${ctx.prefix}auth:audit`, 0, 9999));
  const enhanced: string[] = [];
  for (let i = 0; i < 5; i++) {
    const user = rng.pick(USERS.slice(1));
    enhanced.push(
      pythonJson({
        type: 'jwt_authenticated',
        data: {
          user,
          sub: `oidc|${rng.hex(16)}`,
          groups: ['kubently-users', ...(i === 0 ? ['kubently-admins'] : [])],
        },
        timestamp: pythonIso(now - (5 - i) * 600 * SECOND + rng.int(0, 999_999)),
      }),
    );
  }
  await ctx.send(
    (pl) =>
      pl
        .lpush(`${ctx.prefix}auth:audit:enhanced`, ...enhanced)
        .ltrim(`${ctx.prefix}auth:audit:enhanced`, 0, 9999),
    2,
  );
  return audit.length + enhanced.length;
}
