/**
 * Fills a storage with a realistic mix of every store through its public API (so the data is
 * exactly what the backend writes): kv keys with and without TTL, sessions across clusters with
 * correlation ids, tokens, queue messages in every state (waiting, delayed, leased, dead) with
 * dedup ids, events on several channels and audit entries. Shared by the migration tests and
 * the benchmark.
 */
import type { Storage } from '../../lib/storage/types.js';

export interface PopulateCounts {
  kv: number;
  sessions: number;
  tokens: number;
  queues: number;
  events: number;
  audit: number;
  /** WebSocket connections, each on 1–3 channels (default none). */
  connections?: number;
}

export interface Populated {
  counts: PopulateCounts;
  /** A few issued tokens' secrets (to prove they verify after a copy). */
  secrets: { token: string; identity: string }[];
  /** Message ids per queue; for `jobs` in send order (FIFO must survive the copy). */
  queues: Record<string, string[]>;
}

/** Runs `fn` over `items` with `concurrency` in flight. */
export async function inParallel<T>(
  items: T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

export async function populate(storage: Storage, counts: PopulateCounts): Promise<Populated> {
  const out: Populated = { counts, secrets: [], queues: {} };
  // kv: values of every JSON kind, a third with a TTL.
  for (let i = 0; i < counts.kv; i += 1000) {
    const entries = range(Math.min(1000, counts.kv - i)).map((j) => {
      const n = i + j;
      const value =
        n % 5 === 0
          ? { n, name: `item ${n}`, tags: ['a', 'b'], nested: { ok: n % 2 === 0, big: 9007199254740991 } }
          : n % 5 === 1
            ? `text ${n} ☃`
            : n % 5 === 2
              ? n
              : n % 5 === 3
                ? [n, null, true]
                : null;
      return {
        key: `key:${String(n).padStart(7, '0')}`,
        value,
        ttl: n % 3 === 0 ? 3600 + (n % 100) : undefined,
      };
    });
    await storage.kv.setMany(entries);
  }
  await inParallel(range(counts.sessions), 32, async (i) => {
    await storage.sessions.create({
      clusterId: `cluster-${i % 17}`,
      userId: i % 4 === 0 ? undefined : `user-${i % 50}`,
      correlationId: i % 3 === 0 ? `corr-${Math.floor(i / 3) % 200}` : undefined,
      serviceIdentity: i % 2 === 0 ? 'agent' : undefined,
      data: { i, note: 'session data', list: [1, 2, 3] },
      ttl: 600 + (i % 300),
    });
  });
  await inParallel(range(counts.tokens), 16, async (i) => {
    const issued = await storage.tokens.issue({
      identity: `svc-${i}`,
      scopes: i % 2 === 0 ? ['kv:read', 'kv:write'] : ['queues:send', 'queues:receive'],
      resources: i % 3 === 0 ? ['*'] : [`team-${i % 7}:*`],
      ttl: i % 4 === 0 ? 86_400 : undefined,
    });
    if (out.secrets.length < 5) out.secrets.push({ token: issued.token, identity: issued.identity });
  });
  // Queues: sent in order per queue, then some leased, some nacked to death, some delayed.
  const queueNames = ['jobs', 'commands:cluster-1', 'results {x}', 'ünïcode'];
  const perQueue = Math.floor(counts.queues / queueNames.length);
  for (const [q, queue] of queueNames.entries()) {
    const n = q === queueNames.length - 1 ? counts.queues - perQueue * (queueNames.length - 1) : perQueue;
    const ids: string[] = [];
    if (q === 0) {
      // One queue sent one message at a time: its FIFO order is known (payload seq).
      for (let i = 0; i < n; i++) ids.push((await storage.queues.send(queue, { queue, seq: i })).id);
    }
    for (let i = q === 0 ? n : 0; i < n; i += 200) {
      const sent = await Promise.all(
        range(Math.min(200, n - i)).map((j) =>
          storage.queues.send(
            queue,
            { queue, seq: i + j },
            {
              dedupId: (i + j) % 10 === 0 ? `d-${i + j}` : undefined,
              delay: (i + j) % 50 === 49 ? 3600 : undefined,
            },
          ),
        ),
      );
      // Promise.all keeps call order, but the sends raced: ids in FIFO order come from the source.
      ids.push(...sent.map((s) => s.id));
    }
    out.queues[queue] = ids;
    // Lease a few (they stay in flight), and kill a few.
    await storage.queues.receive(queue, { max: 5, visibilityTimeout: 3600 });
  }
  // With `queues.maxAttempts: 1` these become dead letters; otherwise they wait again.
  const dead = await storage.queues.receive('jobs', { max: 3, visibilityTimeout: 60 });
  for (const m of dead) await storage.queues.nack('jobs', m.id, m.receipt);
  const channels = ['events:a', 'events:b', 'cluster-1:status', 'empty {tag}'];
  await inParallel(range(counts.events), 8, async (i) => {
    await storage.events.publish(channels[i % 3]!, { i, kind: 'event', at: i });
  });
  await inParallel(range(counts.audit), 16, async (i) => {
    await storage.audit.append({
      identity: `svc-${i % 20}`,
      action: i % 2 === 0 ? 'kv.set' : 'queues.send',
      resource: i % 5 === 0 ? undefined : `key:${i}`,
      correlationId: i % 7 === 0 ? `corr-${i}` : undefined,
      outcome: i % 11 === 0 ? 'denied' : 'ok',
      details: i % 3 === 0 ? { i, why: 'test' } : undefined,
    });
  });
  await inParallel(range(counts.connections ?? 0), 16, async (i) => {
    const connectionId = `conn-${String(i).padStart(6, '0')}`;
    await storage.connections.register({
      connectionId,
      identity: `agent-${i % 10}`,
      tokenId: `token-${i}`,
      tokenExpiresAt: i % 4 === 0 ? null : new Date(Date.now() + 3_600_000 + i).toISOString(),
      scopes: ['events:subscribe'],
      resources: i % 2 === 0 ? ['*'] : [`cluster-${i % 17}:*`],
    });
    for (let c = 0; c <= i % 3; c++) await storage.connections.subscribe(connectionId, `channel-${c}`);
  });
  return out;
}
