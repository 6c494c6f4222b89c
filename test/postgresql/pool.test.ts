/**
 * Pooled connections that died without a word: a Lambda container frozen between invocations,
 * or a Neon compute that scaled to zero, leaves sockets that look open. A relay between the
 * pool and PostgreSQL plays that part by going silent on the connections it carries.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../lib/config/index.js';
import { createSql, type Sql } from '../../lib/storage/postgresql/sql.js';
import { startNeonProxy } from '../../local/neon-proxy.js';
import { postgresBackend, testDatabaseUrl } from '../support/backends.js';
import { sleep } from '../support/helpers.js';

const URL = testDatabaseUrl();
const unavailable = await postgresBackend({ name: 'postgresql-pg', driver: 'pg' }).available();
if (unavailable && process.env.CI) throw new Error(`PostgreSQL is required under CI: ${unavailable}`);
if (unavailable)
  console.warn(`\n⚠ test/postgresql/pool SKIPPED: ${unavailable} (start PostgreSQL or set DATABASE_URL)\n`);

/** A TCP relay to the database whose current connections can be made to drop every byte, silently. */
async function startRelay(target: URL): Promise<{ port: number; silence(): void; close(): Promise<void> }> {
  const pairs = new Set<{ client: Socket; server: Socket; silent: boolean }>();
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(Number(target.port || 5432), target.hostname);
    const pair = { client, server: upstream, silent: false };
    pairs.add(pair);
    client.on('data', (chunk) => pair.silent || upstream.write(chunk));
    upstream.on('data', (chunk) => pair.silent || client.write(chunk));
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', () => pair.silent || end()).on('error', () => pair.silent || end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('relay has no port');
  return {
    port: address.port,
    silence() {
      for (const pair of pairs) pair.silent = true;
    },
    async close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.server.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(unavailable !== undefined)(
  `pooled connections that died silently${unavailable ? ` — SKIPPED: ${unavailable}` : ''}`,
  () => {
    const table = `kst_pool_${randomBytes(4).toString('hex')}`;
    let admin: Sql;

    beforeAll(async () => {
      admin = await createSql(resolveConfig({ postgresql: { url: URL, listen: false } }).postgresql);
      await admin.query(`CREATE TABLE ${table} (n int)`);
    });
    afterAll(async () => {
      await admin.query(`DROP TABLE IF EXISTS ${table}`);
      await admin.close();
    });

    for (const driver of ['pg', 'neon'] as const) {
      it(`${driver}: a write after an idle spell goes out on a live connection, once`, async () => {
        await admin.query(`DELETE FROM ${table}`);
        const relay = await startRelay(new globalThis.URL(URL));
        const proxy = driver === 'neon' ? await startNeonProxy() : undefined;
        const url = new globalThis.URL(URL);
        url.hostname = '127.0.0.1';
        url.port = String(relay.port);
        const sql = await createSql(
          resolveConfig({
            postgresql: {
              url: url.href,
              driver,
              wsProxy: proxy?.wsProxy,
              listen: false,
              poolSize: 1,
              connectTimeout: 1,
              commandTimeout: 20,
            },
          }).postgresql,
          { idleCheckMs: 100 },
        );
        try {
          await sql.query(`INSERT INTO ${table} VALUES (1)`);
          relay.silence();
          await sleep(300);
          // Sent on the silent connection this would hang for the command timeout and then fail,
          // not knowing whether it ran; the idle check replaces the connection first.
          await sql.query(`INSERT INTO ${table} VALUES (2)`);
          const rows = await admin.query<{ n: number }>(`SELECT n FROM ${table} ORDER BY n`);
          expect(rows.map((r) => r.n)).toEqual([1, 2]);
        } finally {
          await sql.close().catch(() => {});
          await proxy?.close();
          await relay.close();
        }
      }, 15_000);
    }
  },
);
