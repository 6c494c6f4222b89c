/**
 * What a Redis must be for "nothing acknowledged is lost", against private servers (never the
 * shared one): a Sentinel group whose primary is killed (SIGKILL) after its replicas were cut
 * off — acknowledged writes are lost with default settings and none with
 * `redis.waitForReplicas`, and the storage follows the promoted replica without a restart — a
 * single Redis killed and restarted with `appendfsync always` (nothing lost) and without
 * persistence (everything lost), the warnings a storage gives at start and in its health, and
 * failures said in this project's words.
 */
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../lib/errors.js';
import { createStorage } from '../../lib/storage/index.js';
import { durabilityWarnings } from '../../lib/storage/redis/durability.js';
import { type FaultReport, redisFailover, redisRestart } from '../reliability/redis-faults.js';
import { SENTINEL_NAME, SentinelGroup } from '../support/servers/redis-sentinel.js';
import { missingRedisBinaries, PrivateRedis } from '../support/servers/redis-server.js';

const missing = missingRedisBinaries(['redis-server', 'redis-sentinel']);
if (missing) console.warn(`\n⚠ test/redis/durability SKIPPED: ${missing}\n`);
const skipped = missing ? ` — SKIPPED: ${missing}` : '';

const short = { writers: 4, beforeMs: 500, afterMs: 700 };
const lost = (r: FaultReport) => r.lostKv + r.lostMessages;
const report = (r: FaultReport) => console.log(JSON.stringify(r));

describe.skipIf(missing !== undefined)(`Redis failover (Sentinel)${skipped}`, () => {
  it('default settings: writes acknowledged after the replicas were cut off are lost in the failover', async () => {
    const r = await redisFailover({ ...short, replicaLagMs: 500 });
    report(r);
    expect(lost(r)).toBeGreaterThan(0);
    // The storage found the promoted replica by itself: writes were acknowledged again.
    expect(r.recoveryMs).toBeGreaterThan(0);
    expect(r.recoveryMs).toBeLessThan(r.durationMs);
  });

  it('redis.waitForReplicas: nothing acknowledged is lost; what no replica confirmed failed instead', async () => {
    const r = await redisFailover({
      ...short,
      replicaLagMs: 500,
      waitForReplicas: { replicas: 1, timeout: 0.5 },
    });
    report(r);
    expect(lost(r)).toBe(0);
    expect(r.failed).toBeGreaterThan(0);
    expect(r.acknowledged).toBeGreaterThan(0);
    expect(r.recoveryMs).toBeLessThan(r.durationMs);
  });

  it('a write no replica confirms is a retryable BackendUnavailableError saying it is not acknowledged', async () => {
    const group = await SentinelGroup.start({ replicas: 1 });
    const storage = createStorage({
      backend: 'redis',
      keyPrefix: 'wait:',
      redis: {
        sentinels: [group.sentinelAddress],
        sentinelName: SENTINEL_NAME,
        waitForReplicas: { replicas: 1, timeout: 0.2 },
      },
    });
    try {
      // Confirmed once the replica answers (on a busy machine, maybe not the very first WAIT).
      for (let attempt = 1; ; attempt++) {
        const ok = await storage.kv.set('k', 1).then(
          () => true,
          () => false,
        );
        if (ok) break;
        if (attempt >= 50) throw new Error('the replica never confirmed a write');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      await group.replicas[0]!.kill('SIGSTOP');
      const failure = await storage.kv.set('k', 2).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(BackendUnavailableError);
      expect(failure).toMatchObject({ retryable: true });
      expect((failure as Error).message).toMatch(/0 of the 1 replica\(s\).*not acknowledged/);
      // A receive that leased nothing wrote nothing: no WAIT, no failure.
      expect(await storage.queues.receive('q')).toEqual([]);
    } finally {
      await group.replicas[0]!.kill('SIGCONT');
      await storage.close();
      await group.stop();
    }
  });
});

describe.skipIf(missing !== undefined)(`Redis kill -9 and restart${skipped}`, () => {
  it('appendonly yes, appendfsync always: every acknowledged write survives', async () => {
    const r = await redisRestart('always', short);
    report(r);
    expect(r.acknowledged).toBeGreaterThan(0);
    expect(lost(r)).toBe(0);
  });

  it('no persistence: the restart loses what Redis had acknowledged', async () => {
    const r = await redisRestart('none', short);
    report(r);
    expect(lost(r)).toBeGreaterThan(0);
  });
});

describe.skipIf(missing !== undefined)(`what a storage says about its Redis${skipped}`, () => {
  it('warns in its health checks when the server may lose acknowledged writes, not when it keeps them', async () => {
    const bare = await PrivateRedis.start();
    const durable = await PrivateRedis.start({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    const onBare = createStorage({ backend: 'redis', redis: { url: bare.url } });
    const onDurable = createStorage({ backend: 'redis', redis: { url: durable.url } });
    try {
      const health = await onBare.health();
      expect(health.status).toBe('ok');
      expect(health.checks.redis?.warnings?.join(' ')).toMatch(/no append-only file and no replica/);
      expect((await onDurable.health()).checks.redis?.warnings).toBeUndefined();
    } finally {
      await Promise.all([onBare.close(), onDurable.close()]);
      await Promise.all([bare.stop(), durable.stop()]);
    }
  });

  it('a server that refuses CONFIG (ElastiCache) is judged from INFO alone', async () => {
    const server = await PrivateRedis.start({
      args: ['--appendonly', 'yes', '--appendfsync', 'always', '--rename-command', 'CONFIG', '""'],
    });
    const storage = createStorage({ backend: 'redis', redis: { url: server.url } });
    try {
      const warnings = (await storage.health()).checks.redis?.warnings ?? [];
      expect(warnings.join(' ')).toMatch(/fsync policy could not be read/);
    } finally {
      await storage.close();
      await server.stop();
    }
  });

  it('says what happened in its own words, not the driver’s', async () => {
    const server = await PrivateRedis.start();
    const storage = createStorage({
      backend: 'redis',
      redis: { url: server.url, maxRetriesPerRequest: 1, commandTimeout: 0.3 },
    });
    try {
      await storage.kv.set('k', 1);
      await server.kill('SIGKILL');
      const down = await storage.kv.get('k').catch((error: unknown) => error);
      expect(down).toBeInstanceOf(BackendUnavailableError);
      expect((down as Error).message).toMatch(
        /^redis unavailable: the connection dropped and 2 reconnect attempts failed \(redis\.maxRetriesPerRequest is 1\)/,
      );
      expect((down as Error).message).not.toMatch(/Refer to|max retries per request limit/);
      const health = await storage.health();
      expect(health.checks.redis?.error).not.toMatch(/Refer to|max retries per request limit/);
    } finally {
      await storage.close();
      await server.stop();
    }
  });
});

describe('durability warnings', () => {
  const facts = { aof: true, fsync: 'always', role: 'master', replicas: 0 };
  it('none for an append-only file fsynced on every write', () => {
    expect(durabilityWarnings(facts, undefined)).toEqual([]);
  });
  it('everysec, no persistence, asynchronous replicas, too few replicas, a replica, unknowns', () => {
    expect(durabilityWarnings({ ...facts, fsync: 'everysec' }, undefined).join()).toMatch(/last second/);
    expect(durabilityWarnings({ ...facts, aof: false }, undefined).join()).toMatch(/no replica/);
    expect(durabilityWarnings({ ...facts, aof: false, replicas: 2 }, undefined).join()).toMatch(
      /asynchronous.*waitForReplicas/,
    );
    expect(durabilityWarnings({ ...facts, aof: false, replicas: 2 }, 1)).toHaveLength(1); // restart hazard only
    expect(durabilityWarnings({ ...facts, replicas: 0 }, 1).join()).toMatch(/every write fails/);
    expect(durabilityWarnings({ ...facts, role: 'slave' }, undefined).join()).toMatch(
      /replica, not a primary/,
    );
    expect(durabilityWarnings({ ...facts, aof: undefined }, undefined).join()).toMatch(/INFO refused/);
    expect(durabilityWarnings({ ...facts, fsync: undefined }, undefined).join()).toMatch(/CONFIG refused/);
  });
});
