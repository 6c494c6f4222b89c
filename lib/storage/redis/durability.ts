/**
 * What the connected Redis can promise about acknowledged writes, read once a connection is
 * ready: persistence (`INFO persistence`, and `CONFIG GET appendfsync` where CONFIG is allowed —
 * ElastiCache refuses it), replication (`INFO replication`) and the `redis.waitForReplicas`
 * setting. A Redis that can lose what it acknowledged says so once per process (a warning log
 * line) and in every health check (`warnings`); it is not an outage.
 */
import type { Cluster, Redis } from 'ioredis';
import type { StorageConfig } from '../../config/index.js';

/** What was read from one server; undefined where the server would not say. */
export interface DurabilityFacts {
  /** `aof_enabled` of INFO persistence. */
  aof: boolean | undefined;
  /** `appendfsync` (CONFIG GET); undefined when CONFIG is refused. */
  fsync: string | undefined;
  /** `role` of INFO replication: `master` or `slave`. */
  role: string | undefined;
  /** `connected_slaves` of INFO replication. */
  replicas: number | undefined;
}

/** Replicas every write waits for (`redis.waitForReplicas.replicas`), if any. */
type WaitFor = number | undefined;

/** Sentences for what an acknowledged write may not survive on a server with `facts`; none when it survives restarts. */
export function durabilityWarnings(facts: DurabilityFacts, waitFor: WaitFor): string[] {
  const warnings: string[] = [];
  if (facts.role !== undefined && facts.role !== 'master') {
    warnings.push(
      `connected to a ${facts.role === 'slave' ? 'replica' : facts.role}, not a primary: writes fail`,
    );
  }
  if (waitFor !== undefined) {
    if (facts.replicas !== undefined && facts.replicas < waitFor) {
      warnings.push(
        `redis.waitForReplicas asks for ${waitFor} replica(s) and the primary has ${facts.replicas} connected: every write fails until enough replicas are connected`,
      );
    }
    if (facts.aof === false) {
      warnings.push(
        'the primary keeps no append-only file: if it restarts before a replica is promoted, it comes back empty and its replicas copy that (let Sentinel or the service fail over instead of restarting it, or turn on appendonly)',
      );
    }
    return warnings;
  }
  if (facts.aof === undefined) {
    warnings.push(
      'persistence could not be read (INFO refused): whether an acknowledged write survives a restart is unknown',
    );
  } else if (!facts.aof) {
    warnings.push(
      facts.replicas !== undefined && facts.replicas > 0
        ? `no append-only file, and replication is asynchronous: a failover to one of the ${facts.replicas} replica(s) loses the writes acknowledged just before it (set redis.waitForReplicas), and a restart of the primary loses everything`
        : 'no append-only file and no replica: a restart of Redis loses every acknowledged write (set appendonly yes with appendfsync always, or run a replica and set redis.waitForReplicas)',
    );
  } else if (facts.fsync === 'everysec') {
    warnings.push(
      'appendfsync everysec: a crash of the machine (not of Redis alone) can lose the last second of acknowledged writes (appendfsync always loses none)',
    );
  } else if (facts.fsync === 'no') {
    warnings.push(
      'appendfsync no: a crash of the machine can lose acknowledged writes the operating system had not written yet (appendfsync always loses none)',
    );
  } else if (facts.fsync === undefined) {
    warnings.push(
      'append-only file on, but its fsync policy could not be read (CONFIG refused): with everysec a machine crash can lose the last second of acknowledged writes',
    );
  }
  return warnings;
}

function infoField(info: string, field: string): string | undefined {
  const match = new RegExp(`^${field}:(.*)$`, 'm').exec(info);
  return match?.[1]?.trim();
}

/** A refusal (ACL, a command the service disables) is an unknown; a failure to reach the server is thrown. */
const refused = (error: unknown): undefined => {
  if (error instanceof Error && error.name === 'ReplyError') return undefined;
  throw error;
};

/** Reads the facts from one server; what the server refuses stays undefined. */
export async function readDurabilityFacts(node: Redis): Promise<DurabilityFacts> {
  const [persistence, replication, fsync] = await Promise.all([
    node.info('persistence').catch(refused),
    node.info('replication').catch(refused),
    (node.config('GET', 'appendfsync') as Promise<string[]>).then((pair) => pair[1], refused),
  ]);
  const aof = persistence === undefined ? undefined : infoField(persistence, 'aof_enabled');
  const replicas = replication === undefined ? undefined : infoField(replication, 'connected_slaves');
  return {
    aof: aof === undefined ? undefined : aof === '1',
    fsync,
    role: replication === undefined ? undefined : infoField(replication, 'role'),
    replicas: replicas === undefined ? undefined : Number(replicas),
  };
}

/** Endpoints already reported by this process: one warning line each, not one per storage. */
const reported = new Set<string>();

export interface DurabilityCheck {
  /** The warnings (empty: acknowledged writes survive a restart); waits for the first reading. */
  warnings(): Promise<string[]>;
}

/**
 * Reads the server's durability once the client is ready (again after a failure to read, at the
 * next call), logs its warnings once per endpoint and process.
 */
export function durabilityCheck(client: Redis | Cluster, config: StorageConfig): DurabilityCheck {
  const endpoint = config.redis.sentinels
    ? `sentinel ${config.redis.sentinelName}`
    : config.redis.url.replace(/\/\/[^@]*@/, '//');
  const waitFor = config.redis.waitForReplicas?.replicas;
  let reading: Promise<string[]> | undefined;
  const read = async (): Promise<string[]> => {
    const nodes = 'nodes' in client && typeof client.nodes === 'function' ? client.nodes('master') : [client];
    const warnings = new Set<string>();
    for (const node of nodes as Redis[]) {
      for (const warning of durabilityWarnings(await readDurabilityFacts(node), waitFor))
        warnings.add(warning);
    }
    if (warnings.size > 0 && !reported.has(endpoint)) {
      reported.add(endpoint);
      console.warn(
        JSON.stringify({
          level: 'WARN',
          message: 'redis may lose acknowledged writes',
          endpoint,
          warnings: [...warnings],
          see: 'docs/reliability-redis.md',
        }),
      );
    }
    return [...warnings];
  };
  const start = () => {
    reading ??= read();
    reading.catch(() => {
      reading = undefined;
    });
    return reading;
  };
  if (client.status === 'ready') void start().catch(() => {});
  else client.once('ready', () => void start().catch(() => {}));
  return { warnings: start };
}
