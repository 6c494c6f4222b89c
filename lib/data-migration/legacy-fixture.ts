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

export async function writeLegacyFixture(
  client: Redis,
  options: LegacyFixtureOptions = {},
): Promise<LegacyManifest> {
  const p = options.prefix ?? '';
  const rng = generator(options.seed ?? 1);
  const liveCount = options.sessions ?? 200;
  const clusterCount = Math.max(1, options.clusters ?? 5);
  const auditCount = Math.min(options.auditEntries ?? 200, 10_000);
  const eventCap = Math.min(options.events ?? 1000, 1000);
  const [seconds, micros] = await client.time();
  const now = Number(seconds) * SECOND + Number(micros);

  // Commands go out in pipelines of a few thousand.
  let pipeline = client.pipeline();
  let queued = 0;
  const flush = async () => {
    if (queued === 0) return;
    const results = await pipeline.exec();
    for (const [error] of results ?? []) if (error) throw error;
    pipeline = client.pipeline();
    queued = 0;
  };
  const send = async (build: (pl: ReturnType<Redis['pipeline']>) => void, n = 1) => {
    build(pipeline);
    queued += n;
    if (queued >= 2000) await flush();
  };
  /** Writes a string that expires at `expiresUs` (the time left, as the service's TTL left it). */
  const setUntil = (key: string, value: string, expiresUs: number) =>
    send((pl) => pl.set(`${p}${key}`, value, 'PX', Math.max(1, Math.floor((expiresUs - now) / 1000))));

  // -- clusters, executor tokens, API keys ------------------------------------------------
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
    await send((pl) => pl.set(`${p}executor:token:${cluster}`, executor[cluster]!));

  const identities = ['tenant:abc', 'tenant:def', 'service:control-plane'];
  const apiKeys: Record<string, string> = {};
  for (const identity of identities) {
    const plaintext = `kk_${rng.hex(40)}`;
    apiKeys[plaintext] = identity;
    const hash = createHash('sha256').update(plaintext).digest('hex');
    await send((pl) => pl.set(`${p}api:key:${hash}`, identity));
  }

  // -- sessions ---------------------------------------------------------------------------
  const users = ['anonymous', 'alice@example.com', 'bob@example.com', 'oncall@example.com'];
  const services = ['direct', 'service:a2a-agent', ...identities];
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
      user: rng.pick(users),
      service: rng.pick(services),
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

  // Replays the sessions' effects on the derived keys in time order.
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

  const liveIds = new Set(sessions.filter((s) => s.fate === 'live').map((s) => s.id));
  const skipped: Record<string, number> = {};
  const count = (reason: string, n = 1) => {
    if (n > 0) skipped[reason] = (skipped[reason] ?? 0) + n;
  };
  for (const s of sessions) {
    if (s.fate !== 'live') continue;
    const remaining = s.lastUs + SESSION_TTL * SECOND;
    await setUntil(`session:${s.id}`, pythonJson(sessionData(s, s.lastUs, s.commands)), remaining);
  }
  let kv = 0;
  for (const [cluster, slot] of active) {
    if (slot.expiresUs <= now) continue;
    await setUntil(`cluster:active:${cluster}`, slot.value, slot.expiresUs);
    kv += 1;
  }
  for (const [cluster, slot] of clusterSession) {
    if (slot.expiresUs <= now) continue;
    await setUntil(`cluster:session:${cluster}`, slot.value, slot.expiresUs);
    if (!liveIds.has(slot.value)) count(STALE_REASONS.cluster);
  }
  for (const [corr, set] of correlationSets) {
    if (set.expiresUs <= now || set.members.size === 0) continue;
    const members = [...set.members];
    await send((pl) => pl.sadd(`${p}correlation:${corr}:sessions`, ...members));
    await send((pl) =>
      pl.pexpire(`${p}correlation:${corr}:sessions`, Math.floor((set.expiresUs - now) / 1000)),
    );
    count(STALE_REASONS.correlation, members.filter((m) => !liveIds.has(m)).length);
  }
  const activeMembers = [...activeSet];
  for (let i = 0; i < activeMembers.length; i += 1000) {
    const chunk = activeMembers.slice(i, i + 1000);
    await send((pl) => pl.sadd(`${p}sessions:active`, ...chunk));
  }
  count(STALE_REASONS.active, activeMembers.filter((m) => !liveIds.has(m)).length);

  // session:events: created and ended events, newest first, the last 1000 kept.
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
    await send((pl) => pl.lpush(`${p}session:events`, ...chunk));
  }
  if (kept.length > 0) await send((pl) => pl.ltrim(`${p}session:events`, 0, 999));

  // -- capabilities, command results --------------------------------------------------------
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
    await setUntil(
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
    await setUntil(`command:cluster:${command}`, cluster, bound + 120 * SECOND);
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
    await setUntil(`result:${command}`, pythonJson(result), executed + 2_000 + 60 * SECOND);
    kv += 1;
  }

  // -- keys the import leaves behind ------------------------------------------------------
  await send((pl) => pl.set(`${p}metrics:commands_timeout:global`, '2', 'EX', 86_400));
  await send((pl) => pl.set(`${p}metrics:commands_queued:${clusters[0]}`, '5', 'EX', 86_400));
  count(notMigrated('metrics:*'), 2);
  const thread = rng.uuid();
  const week = 7 * 86_400;
  await send((pl) =>
    pl
      .hset(`${p}kubently:ckpt:cp:${thread}::cp-1`, { checkpoint: 'eyJ2IjogMX0=', metadata: '{}' })
      .expire(`${p}kubently:ckpt:cp:${thread}::cp-1`, week),
  );
  await send((pl) =>
    pl.zadd(`${p}kubently:ckpt:idx:${thread}:`, 0, 'cp-1').expire(`${p}kubently:ckpt:idx:${thread}:`, week),
  );
  await send((pl) =>
    pl
      .sadd(`${p}kubently:ckpt:threadkeys:${thread}`, `kubently:ckpt:cp:${thread}::cp-1`)
      .expire(`${p}kubently:ckpt:threadkeys:${thread}`, week),
  );
  count(notMigrated('kubently:ckpt:*'), 3);
  const incidentAt = Math.floor(now / SECOND) - 3600;
  await send((pl) =>
    pl.set(
      `${p}kubently:incidents:rec:default:inc-1`,
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
  await send((pl) =>
    pl
      .zadd(`${p}kubently:incidents:idx:default`, incidentAt, 'inc-1')
      .expire(`${p}kubently:incidents:idx:default`, 90 * 86_400),
  );
  count(notMigrated('kubently:incidents:*'), 2);

  // -- audit ------------------------------------------------------------------------------
  const liveList = sessions.filter((s) => s.fate === 'live');
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
            service_identity: rng.next() < 0.1 ? null : (session?.service ?? rng.pick(services)),
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
        ? { service_identity: rng.pick(identities), dynamic: true, timestamp: pythonIso(at + 7, i < 2) }
        : {
            service_identity: rng.next() < 0.3 ? null : 'service:a2a-agent',
            timestamp: pythonIso(at + 5, i < 2),
          };
      audit.push(pythonJson({ type: 'api_key_verified', data, correlation_id: null, timestamp: stamp }));
    }
  }
  for (let i = 0; i < audit.length; i += 500) {
    const chunk = audit.slice(i, i + 500);
    await send((pl) => pl.lpush(`${p}auth:audit`, ...chunk));
  }
  if (audit.length > 0) await send((pl) => pl.ltrim(`${p}auth:audit`, 0, 9999));
  const enhanced: string[] = [];
  for (let i = 0; i < 5; i++) {
    const user = rng.pick(users.slice(1));
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
  await send(
    (pl) => pl.lpush(`${p}auth:audit:enhanced`, ...enhanced).ltrim(`${p}auth:audit:enhanced`, 0, 9999),
    2,
  );
  await flush();

  return {
    prefix: p,
    counts: {
      kv,
      sessions: liveList.length,
      tokens: clusters.length + identities.length,
      events: kept.length,
      audit: audit.length + enhanced.length,
    },
    skipped,
    tokens: { executor, apiKeys },
    clusters,
    capabilities,
    liveSessions: liveList
      .slice(0, 1000)
      .map((s) => ({ sessionId: s.id, clusterId: s.cluster, correlationId: s.correlation })),
  };
}
