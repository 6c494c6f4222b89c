/**
 * Redis fault experiments, shared by the test suite (short runs) and `npm run reliability:redis`
 * (full runs): what a stream of acknowledged writes loses when
 *
 * - `failover`: the primary of a Sentinel group (primary, 2 replicas, 1 Sentinel) is killed
 *   with SIGKILL and a replica is promoted — with default settings, or with
 *   `redis.waitForReplicas`;
 * - `restart`: a single Redis is killed with SIGKILL and started again on the same port and
 *   directory — with `appendonly yes` and an `appendfsync` policy, or without persistence.
 *
 * Each answers the counts and the time from the fault until writes were acknowledged again.
 */
import { randomBytes } from 'node:crypto';
import type { StorageConfigInput } from '../../lib/config/index.js';
import { createStorage } from '../../lib/storage/index.js';
import { SENTINEL_NAME, SentinelGroup } from '../support/servers/redis-sentinel.js';
import { PrivateRedis } from '../support/servers/redis-server.js';
import { recoveryMs, startWriteStream, type Verification, verify } from './write-stream.js';

export interface FaultReport extends Verification {
  scenario: string;
  writers: number;
  /** How long the stream ran, ms. */
  durationMs: number;
  attempted: number;
  acknowledged: number;
  /** Writes that failed (not acknowledged). */
  failed: number;
  /** ms from the server's death until a write begun after it was acknowledged. */
  recoveryMs: number;
  /** failover: ms from the kill until the Sentinel named a replica as the primary. */
  promotedMs?: number;
}

export interface FaultOptions {
  writers?: number;
  /** ms of writes before the fault. */
  beforeMs?: number;
  /** ms of writes after the fault was over (a replica promoted, a server restarted). */
  afterMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(
  scenario: string,
  config: StorageConfigInput,
  options: FaultOptions,
  /** Injects the fault; answers when the server died (performance.now()). */
  fault: () => Promise<{ killedAt: number; promotedMs?: number }>,
): Promise<FaultReport> {
  const writers = options.writers ?? 8;
  const prefix = `fault${randomBytes(3).toString('hex')}:`;
  const storage = createStorage({ ...config, backend: 'redis', keyPrefix: prefix });
  const startedAt = performance.now();
  try {
    // Connected, scripts loaded and (with waitForReplicas) replicas confirming before the clock starts.
    for (let attempt = 1; ; attempt++) {
      try {
        await storage.kv.set('warm', 1);
        break;
      } catch (error) {
        if (attempt >= 40) throw error;
        await sleep(250);
      }
    }
    const stream = startWriteStream(storage, writers);
    await sleep(options.beforeMs ?? 1000);
    const { killedAt, promotedMs } = await fault();
    await sleep(options.afterMs ?? 1000);
    const outcome = await stream.stop();
    const durationMs = Math.round(performance.now() - startedAt);
    // Reads back (and acks what it drains) without waiting for replicas: the remaining replica
    // may still be re-pointing at the promoted one.
    const checker = createStorage({
      ...config,
      backend: 'redis',
      keyPrefix: prefix,
      redis: { ...config.redis, waitForReplicas: undefined },
    });
    try {
      const verification = await verify(checker, outcome);
      return {
        scenario,
        writers,
        durationMs,
        attempted: outcome.attempted,
        acknowledged: outcome.acknowledged,
        failed: outcome.failed,
        recoveryMs: recoveryMs(outcome, killedAt),
        ...(promotedMs === undefined ? {} : { promotedMs }),
        ...verification,
      };
    } finally {
      await checker.close();
    }
  } finally {
    await storage.close();
  }
}

export interface FailoverOptions extends FaultOptions {
  /** `redis.waitForReplicas`; unset: default settings. */
  waitForReplicas?: { replicas: number; timeout: number };
  /**
   * ms before the kill at which the replicas are cut off, as by a network partition: the
   * primary drops their links and refuses them back (a password only they lack; connections
   * already open, the storage's and the Sentinel's, stay), so what it acknowledges from then on
   * reaches no replica.
   */
  replicaLagMs?: number;
}

/** Kills the primary of a private Sentinel group mid-stream; the storage follows the promoted replica. */
export async function redisFailover(options: FailoverOptions = {}): Promise<FaultReport> {
  const group = await SentinelGroup.start();
  try {
    const wait = options.waitForReplicas;
    const lag = options.replicaLagMs ?? 0;
    const scenario =
      (wait
        ? `Sentinel failover, waitForReplicas ${wait.replicas} (timeout ${wait.timeout} s)`
        : 'Sentinel failover, default settings') + (lag > 0 ? `, replicas cut off ${lag} ms before` : '');
    return await measure(
      scenario,
      {
        redis: {
          sentinels: [group.sentinelAddress],
          sentinelName: SENTINEL_NAME,
          ...(wait ? { waitForReplicas: wait } : {}),
        },
      },
      options,
      async () => {
        if (lag > 0) {
          const admin = group.primary.admin();
          try {
            await admin.config('SET', 'requirepass', randomBytes(12).toString('hex'));
            await admin.client('KILL', 'TYPE', 'replica');
          } finally {
            admin.disconnect();
          }
          await sleep(lag);
        }
        const killedAt = performance.now();
        await group.primary.kill('SIGKILL');
        await group.promoted();
        return { killedAt, promotedMs: Math.round(performance.now() - killedAt) };
      },
    );
  } finally {
    await group.stop();
  }
}

export type Persistence = 'none' | 'everysec' | 'always';

/** Kills a single private Redis mid-stream (SIGKILL) and starts it again on the same port and directory. */
export async function redisRestart(
  persistence: Persistence,
  options: FaultOptions = {},
): Promise<FaultReport> {
  const args = persistence === 'none' ? [] : ['--appendonly', 'yes', '--appendfsync', persistence];
  const server = await PrivateRedis.start({ args });
  try {
    const scenario =
      persistence === 'none'
        ? 'kill -9 and restart, no persistence'
        : `kill -9 and restart, appendonly yes, appendfsync ${persistence}`;
    return await measure(scenario, { redis: { url: server.url } }, options, async () => {
      await server.kill('SIGKILL');
      const killedAt = performance.now();
      await server.launch();
      return { killedAt };
    });
  } finally {
    await server.stop();
  }
}
