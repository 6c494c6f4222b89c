/**
 * The PostgreSQL backend's own JavaScript per call, with no server: `pg`'s Pool answers at once
 * (a checkout and a statement that resolve in a microtask), so what is timed is the library's
 * code between the storage's entry point and the driver, and a raw-shaped get beside it. CPU
 * time, minimum and median of 7 runs of 100,000 calls: it holds on a busy machine.
 *
 * `npx tsx bench/pg-js-overhead.ts [checkout]`: another checkout's lib/ (an older commit, to
 * compare) instead of this one's.
 */
import pg from 'pg';
import { printCpuPerCall } from './lib/cpu-per-call.js';
import { pgStorageWithoutServer } from './lib/pg-storage-without-server.js';

const TEXT = JSON.stringify({
  cluster: 'prod',
  pods: 42,
  ready: true,
  labels: { app: 'api', tier: 'backend' },
});
const rows: Record<string, unknown[]> = {
  get: [{ value: TEXT }],
  active: [{ active: true }],
  session: [
    {
      session_id: 'x',
      cluster_id: 'c1',
      user_id: 'bench',
      correlation_id: null,
      service_identity: null,
      data: '{}',
      created: 1_765_000_000_000,
      active: 1_765_000_000_000,
      expires: 1_765_000_600_000,
    },
  ],
};
/** A queue message as the fake claim answers it, and the ack of it (both of `ackAndClaim`). */
const MESSAGE_ID = '00000000-0000-4000-8000-000000000001';
const RECEIPT = '00000000-0000-4000-8000-000000000002';
const ackAndClaim = [
  {
    acked: JSON.stringify([MESSAGE_ID]),
    claimed: JSON.stringify([
      {
        id: MESSAGE_ID,
        receipt: RECEIPT,
        payload: TEXT,
        attempts: 1,
        state: 'leased',
        enqueued: 1_765_000_000_000,
        died: null,
        seq: 1,
      },
    ]),
  },
];
const client = {
  query(config: { text: string } | string) {
    const text = typeof config === 'string' ? config : config.text;
    if (text.includes('.sessions (')) return Promise.resolve({ rows: rows.session });
    if (text.includes(' AS acked')) return Promise.resolve({ rows: ackAndClaim });
    return Promise.resolve({
      rows: text.includes('EXISTS')
        ? rows.active
        : text.startsWith('INSERT')
          ? [{ '?column?': 1 }]
          : rows.get,
    });
  },
  release() {},
  on() {},
};
const P = pg.Pool.prototype as unknown as {
  connect: () => Promise<unknown>;
  query: (c: unknown) => Promise<unknown>;
};
P.connect = () => Promise.resolve(client);
const storage = await pgStorageWithoutServer();
const pool = new pg.Pool();
const rawGet = async (key: string) => {
  const c = (await pool.connect()) as unknown as typeof client;
  const { rows } = await c.query({ name: 'g', text: 'SELECT value', values: [key] } as never);
  c.release();
  return rows?.[0] && JSON.parse((rows[0] as { value: string }).value);
};
const VALUE = JSON.parse(TEXT);
const ops: Record<string, (i: number) => Promise<unknown>> = {
  'kv.get': (i) => storage.kv.get(`k${i % 100}`),
  'kv.set': (i) => storage.kv.set(`k${i % 100}`, VALUE),
  'cluster active': () => storage.sessions.isClusterActive('bench-active'),
  'session create': (i) => storage.sessions.create({ clusterId: `c${i % 10}`, userId: 'bench', ttl: 600 }),
  'queue send': () => storage.queues.send('bench', VALUE),
  'queue receive': () => storage.queues.receive('bench'),
  'queue ack': () => storage.queues.ack('bench', MESSAGE_ID, RECEIPT),
  'raw-shaped get': (i) => rawGet(`k${i % 100}`),
};
const N = 100_000;
await printCpuPerCall(ops, N, 7);
