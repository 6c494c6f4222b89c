/**
 * A private primary, its replicas and one Sentinel (quorum 1) on free loopback ports in one
 * temporary directory: enough to kill the primary (SIGKILL) and watch the Sentinel promote a
 * replica. Sentinel notices a dead primary after `downAfterMs`. With two replicas, one is left
 * to confirm writes (`WAIT 1`) after the other was promoted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivateRedis } from './redis-server.js';

export const SENTINEL_NAME = 'kst';

export interface SentinelGroupOptions {
  /** Directives for both data servers (persistence, say). */
  args?: string[];
  /** How long the primary must be silent before the Sentinel fails over (ms). */
  downAfterMs?: number;
  /** Replicas of the primary (default 2). */
  replicas?: number;
}

export class SentinelGroup {
  private constructor(
    readonly dir: string,
    /** The primary when the group started (killing it is the experiment). */
    readonly primary: PrivateRedis,
    readonly replicas: PrivateRedis[],
    readonly sentinel: PrivateRedis,
  ) {}

  static async start(options: SentinelGroupOptions = {}): Promise<SentinelGroup> {
    const dir = mkdtempSync(join(tmpdir(), 'kst-sentinel-'));
    const args = options.args ?? [];
    const primary = await PrivateRedis.start({ dir, args });
    const replicas: PrivateRedis[] = [];
    for (let i = 0; i < (options.replicas ?? 2); i++) {
      replicas.push(
        await PrivateRedis.start({ dir, args: [...args, '--replicaof', '127.0.0.1', String(primary.port)] }),
      );
    }
    const sentinel = await PrivateRedis.start({
      dir,
      sentinelConfig: [
        `sentinel monitor ${SENTINEL_NAME} 127.0.0.1 ${primary.port} 1`,
        `sentinel down-after-milliseconds ${SENTINEL_NAME} ${options.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${SENTINEL_NAME} 10000`,
        `sentinel parallel-syncs ${SENTINEL_NAME} 1`,
        '',
      ].join('\n'),
    });
    const group = new SentinelGroup(dir, primary, replicas, sentinel);
    for (const replica of replicas) {
      await group.until(async () => (await linkOf(replica)) === 'up', 'the replicas to sync');
      await group.until(() => group.sentinelSees(replica), 'the Sentinel to see the replicas');
    }
    return group;
  }

  /** `host:port` of the Sentinel, as `redis.sentinels` takes it. */
  get sentinelAddress(): string {
    return `127.0.0.1:${this.sentinel.port}`;
  }

  /** The port the Sentinel names as the primary now. */
  async primaryPort(): Promise<number> {
    const client = this.sentinel.admin();
    try {
      const [, port] = (await client.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_NAME)) as string[];
      return Number(port);
    } finally {
      client.disconnect();
    }
  }

  /** Waits until the Sentinel names a replica as the primary and that replica says it is one; answers it. */
  async promoted(timeoutMs = 30_000): Promise<PrivateRedis> {
    let promoted: PrivateRedis | undefined;
    await this.until(
      async () => {
        const port = await this.primaryPort();
        promoted = this.replicas.find((replica) => replica.port === port);
        if (!promoted) return false;
        const client = promoted.admin();
        try {
          return /^role:master/m.test(await client.info('replication'));
        } finally {
          client.disconnect();
        }
      },
      'a replica to be promoted',
      timeoutMs,
    );
    return promoted!;
  }

  async stop(): Promise<void> {
    await Promise.all([this.sentinel.stop(), ...this.replicas.map((r) => r.stop()), this.primary.stop()]);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async sentinelSees(replica: PrivateRedis): Promise<boolean> {
    const client = this.sentinel.admin();
    try {
      const replicas = (await client.call('SENTINEL', 'replicas', SENTINEL_NAME)) as string[][];
      return replicas.some((fields) => fields.includes(String(replica.port)));
    } finally {
      client.disconnect();
    }
  }

  private async until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await check().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (see ${this.dir})`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** `master_link_status` of a replica (`up` once it synced). */
async function linkOf(replica: PrivateRedis): Promise<string | undefined> {
  const client = replica.admin();
  try {
    return /^master_link_status:(\w+)/m.exec(await client.info('replication'))?.[1];
  } finally {
    client.disconnect();
  }
}
