/** The cold-request suite's logic: where a connection's handshake ends on the wire, the medians, the table and target. */
import { describe, expect, it } from 'vitest';
import { coldRequestTable } from '../../bench/lib/report.js';
import type { BenchResults } from '../../bench/lib/results.js';
import { evaluateTargets } from '../../bench/lib/targets.js';
import { isQueryWrite, type WireState } from '../../bench/lib/wire.mjs';
import { summarize } from '../../bench/suites/cold-request.js';

/** A PostgreSQL frontend message: type byte, int32 length (itself included), body. */
function pgMessage(type: string, body: string): Buffer {
  const payload = Buffer.from(body);
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(payload.length + 4, 1);
  return Buffer.concat([head, payload]);
}

/** The startup message: int32 length, protocol 3.0, `user\0postgres\0\0`. */
function startup(): Buffer {
  const params = Buffer.from('user\0postgres\0database\0test\0\0');
  const head = Buffer.alloc(8);
  head.writeInt32BE(params.length + 8, 0);
  head.writeInt32BE(196608, 4);
  return Buffer.concat([head, params]);
}

/** A client's binary WebSocket frame, masked as clients must. */
function clientFrame(payload: Buffer, mask = Buffer.from([0x12, 0x34, 0x56, 0x78])): Buffer {
  const length =
    payload.length < 126
      ? Buffer.from([0x82, 0x80 | payload.length])
      : Buffer.from([0x82, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([length, mask, masked]);
}

const resp = (...args: string[]) =>
  Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);

/** Feeds the writes to one fresh socket state; answers the index of the first query write, or -1. */
function firstQuery(wire: 'pg' | 'neon' | 'redis', writes: Buffer[]): number {
  const state: WireState = { written: 0 };
  return writes.findIndex((bytes) => isQueryWrite(wire, bytes, state));
}

describe('cold request: the handshake on the wire', () => {
  it('pg: startup and password are handshake, a simple or extended query is not', () => {
    expect(firstQuery('pg', [startup(), pgMessage('p', 'secret\0'), pgMessage('Q', 'SELECT 1\0')])).toBe(2);
    expect(firstQuery('pg', [startup(), pgMessage('P', '\0SELECT $1\0\0\0')])).toBe(1);
  });

  it('neon: the upgrade request and startup frames are handshake; the query frame is found through the mask, across writes', () => {
    const upgrade = Buffer.from('GET /v1?address=127.0.0.1:5432 HTTP/1.1\r\nUpgrade: websocket\r\n\r\n');
    // The mask turns the payload's first byte into anything: the classifier must unmask it.
    const query = clientFrame(pgMessage('Q', `SELECT '${'x'.repeat(200)}'\0`), Buffer.from([0x51, 0, 0, 0]));
    const writes = [upgrade, clientFrame(startup()), query.subarray(0, 3), query.subarray(3)];
    expect(firstQuery('neon', writes)).toBe(3);
    // Two frames in one write: the second one is the query.
    expect(firstQuery('neon', [upgrade, Buffer.concat([clientFrame(startup()), query])])).toBe(1);
    // Without the query, nothing is.
    expect(firstQuery('neon', [upgrade, clientFrame(startup()), clientFrame(pgMessage('p', 'pw\0'))])).toBe(
      -1,
    );
  });

  it("redis: AUTH, HELLO, CLIENT, SELECT and ioredis' INFO ready check are handshake, a command is not", () => {
    const handshake = [resp('auth', 'pw'), resp('info'), resp('CLIENT', 'SETNAME', 'x'), resp('select', '1')];
    expect(firstQuery('redis', [...handshake, resp('evalsha', 'abc', '1', 'k')])).toBe(4);
    expect(firstQuery('redis', handshake)).toBe(-1);
  });
});

describe('cold request: summary, table and target', () => {
  const run = (importMs: number, requestMs: number) => ({
    importMs,
    beforeConnectMs: requestMs / 4,
    connectMs: requestMs / 4,
    firstQueryMs: requestMs / 2,
    requestMs,
    processMs: importMs + requestMs + 40,
  });

  it('reports medians of each part and the median of the per-run totals', () => {
    const row = summarize('postgresql (pg)', 'kv', [run(10, 100), run(30, 20), run(20, 60)]);
    expect(row).toMatchObject({ runs: 3, importMs: 20, requestMs: 60, connectMs: 15 });
    // Totals 110, 60, 40: their median (60), not the median import plus the median request (20 + 20).
    expect(summarize('redis', 'kv', [run(10, 100), run(50, 10), run(20, 20)]).totalMs).toBe(60);
  });

  it('renders one row per package and function, and judges the cold import on the pg package', () => {
    const coldRequest = [
      summarize('postgresql (pg)', 'kv', [run(30, 50)]),
      summarize('postgresql (pg)', 'publish', [run(42.5, 50)]),
      summarize('redis', 'kv', [run(90, 50)]),
    ];
    const results = { latency: [], peers: { kv: [], queue: [] }, coldRequest } as unknown as BenchResults;
    const table = coldRequestTable(results);
    expect(table).toMatch(/\| postgresql \(pg\) +\| publish +\| +42\.5 \|/);
    expect(table.split('\n')).toHaveLength(2 + 3);
    const target = evaluateTargets(results).find((t) => t.name === 'cold import');
    // The redis package's 90 ms is not the pg package's.
    expect(target).toMatchObject({ met: false, note: 'over: publish' });
    expect(target?.actual).toContain('publish 42.5 ms');
  });
});
