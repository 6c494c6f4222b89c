/**
 * Client CPU per call of the PostgreSQL backend against a raw `pg` Pool, both over the real
 * `pg` client and pool, with a server that answers in this process: each connection's stream
 * is a fake that answers the extended protocol at once (on the next turn of the event loop).
 * No network and no server work, so what differs is the client's: the library's code and its
 * pool and client settings (timeouts) against a bare Pool. Minimum and median of 5 runs of
 * 20,000 calls; CPU time, so it holds on a busy machine.
 *
 * `npx tsx bench/pg-client-overhead.ts [checkout]`: another checkout's lib/ (an older commit,
 * to compare) instead of this one's.
 */

import { Duplex } from 'node:stream';
import pg from 'pg';
import { printCpuPerCall } from './lib/cpu-per-call.js';
import { pgStorageWithoutServer } from './lib/pg-storage-without-server.js';

const TEXT = JSON.stringify({
  cluster: 'prod',
  pods: 42,
  ready: true,
  labels: { app: 'api', tier: 'backend' },
});
const msg = (type: string, body: Buffer) => {
  const b = Buffer.alloc(5 + body.length);
  b.write(type, 0, 'latin1');
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
};
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const cstr = (s: string) => Buffer.from(`${s}\0`);
const rowDesc = (name: string, oid: number) => {
  const b = Buffer.alloc(2 + name.length + 1 + 18);
  b.writeInt16BE(1, 0);
  b.write(`${name}\0`, 2);
  const o = 2 + name.length + 1;
  b.writeInt32BE(0, o);
  b.writeInt16BE(0, o + 4);
  b.writeInt32BE(oid, o + 6);
  b.writeInt16BE(-1, o + 10);
  b.writeInt32BE(-1, o + 12);
  b.writeInt16BE(0, o + 16);
  return msg('T', b);
};
const dataRow = (v: string) => {
  const vb = Buffer.from(v);
  const b = Buffer.alloc(2 + 4 + vb.length);
  b.writeInt16BE(1, 0);
  b.writeInt32BE(vb.length, 2);
  vb.copy(b, 6);
  return msg('D', b);
};
const READY = msg('Z', Buffer.from('I'));
class FakeServer extends Duplex {
  started = false;
  buf = Buffer.alloc(0);
  kinds = new Map<string, string>();
  batch: string[] = [];
  current = '';
  connect() {
    process.nextTick(() => this.emit('connect'));
    return this;
  }
  setNoDelay() {
    return this;
  }
  setKeepAlive() {
    return this;
  }
  ref() {
    return this;
  }
  unref() {
    return this;
  }
  override _read() {}
  override _write(chunk: Buffer, _e: string, cb: () => void) {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      if (!this.started) {
        if (this.buf.length < 4) break;
        const len = this.buf.readInt32BE(0);
        if (this.buf.length < len) break;
        this.buf = this.buf.subarray(len);
        this.started = true;
        out.push(msg('R', int32(0)), msg('K', Buffer.concat([int32(1), int32(2)])), READY);
        continue;
      }
      if (this.buf.length < 5) break;
      const type = String.fromCharCode(this.buf[0]!);
      const len = this.buf.readInt32BE(1);
      if (this.buf.length < len + 1) break;
      const body = this.buf.subarray(5, len + 1);
      this.buf = this.buf.subarray(len + 1);
      if (type === 'P') {
        const name = body.toString('latin1', 0, body.indexOf(0));
        const text = body.toString('utf8', body.indexOf(0) + 1, body.indexOf(0, body.indexOf(0) + 1));
        this.kinds.set(
          name,
          text.includes('EXISTS') ? 'active' : text.startsWith('INSERT') ? 'insert' : 'get',
        );
        out.push(msg('1', Buffer.alloc(0)));
      } else if (type === 'B') {
        const portalEnd = body.indexOf(0);
        const name = body.toString('latin1', portalEnd + 1, body.indexOf(0, portalEnd + 1));
        this.current = this.kinds.get(name) ?? 'get';
        out.push(msg('2', Buffer.alloc(0)));
      } else if (type === 'D') {
        out.push(
          this.current === 'active'
            ? rowDesc('active', 16)
            : this.current === 'insert'
              ? rowDesc('?column?', 23)
              : rowDesc('value', 25),
        );
      } else if (type === 'E') {
        out.push(
          this.current === 'active' ? dataRow('t') : this.current === 'insert' ? dataRow('1') : dataRow(TEXT),
        );
        out.push(msg('C', cstr(this.current === 'insert' ? 'INSERT 0 1' : 'SELECT 1')));
      } else if (type === 'S') out.push(READY);
      else if (type === 'Q') out.push(msg('I', Buffer.alloc(0)), READY);
      else if (type === 'X') {
        this.push(null);
      }
    }
    if (out.length) {
      const b = Buffer.concat(out);
      setImmediate(() => this.push(b));
    }
    cb();
  }
}
const P = pg as unknown as { Pool: typeof pg.Pool };
const Orig = pg.Pool;
P.Pool = class extends Orig {
  constructor(o?: pg.PoolConfig) {
    super({ ...o, stream: () => new FakeServer() as never });
  }
} as never;
const storage = await pgStorageWithoutServer();
const raw = new P.Pool({ max: 8 });
const VALUE = JSON.parse(TEXT);
const ops: Record<string, (i: number) => Promise<unknown>> = {
  'lib kv.get': (i) => storage.kv.get(`k${i % 100}`),
  'raw kv.get': async (i) => {
    const { rows } = await raw.query({
      name: 'g',
      text: 'SELECT value FROM kv_store WHERE key = $1',
      values: [`k${i % 100}`],
    });
    return rows[0] && JSON.parse(rows[0].value);
  },
  'lib active': () => storage.sessions.isClusterActive('bench-active'),
  'raw active': async () =>
    (await raw.query({ name: 'a', text: 'SELECT EXISTS (SELECT 1) AS active', values: ['bench-active'] }))
      .rows[0]?.active === true,
  'lib kv.set': (i) => storage.kv.set(`k${i % 100}`, VALUE),
  'raw kv.set': (i) =>
    raw.query({ name: 's', text: 'INSERT INTO kv_store', values: [`k${i % 100}`, JSON.stringify(VALUE)] }),
};
const N = 20_000;
await printCpuPerCall(ops, N, 5);
process.exit(0);
