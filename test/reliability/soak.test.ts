/**
 * The crash soak, short: 2,000 messages, 4 consumer processes killed with SIGKILL at random and
 * started again, one server restart mid-run, on redis (a private Redis, `appendfsync always`),
 * postgresql (a private PostgreSQL, its restart a crash; lease writes committed asynchronously, as
 * by default, and synchronously) and hybrid (queues on a private Redis, falling back to
 * PostgreSQL). The full run (20,000 messages, 8 consumers): `npm run reliability:redis -- soak`.
 */
import { describe, expect, it } from 'vitest';
import { missingPostgresServer } from '../support/servers/postgres-server.js';
import { missingRedisBinaries } from '../support/servers/redis-server.js';
import { crashSoak, type SoakOptions } from './soak.js';

const missing = missingRedisBinaries(['redis-server']) ?? missingPostgresServer();
if (missing) console.warn(`\n⚠ test/reliability/soak SKIPPED: ${missing}\n`);

describe.skipIf(missing !== undefined)(
  `crash soak of queue consumers${missing ? ` — SKIPPED: ${missing}` : ''}`,
  () => {
    const cases: { name: string; options: Omit<SoakOptions, 'messages' | 'consumers' | 'timeoutMs'> }[] = [
      { name: 'redis', options: { backend: 'redis' } },
      { name: 'postgresql', options: { backend: 'postgresql' } },
      { name: 'postgresql (leaseCommit: sync)', options: { backend: 'postgresql', leaseCommit: 'sync' } },
      { name: 'hybrid', options: { backend: 'hybrid' } },
    ];
    for (const { name, options } of cases) {
      const asyncLeases = options.backend === 'postgresql' && options.leaseCommit !== 'sync';
      const early = asyncLeases
        ? 'none before its lease ended unless the crash undid an asynchronous lease write'
        : 'no redelivery before its lease ended';
      it(`${name}: every acknowledged message acked, none lost, ${early}, duplicates only after kills`, async () => {
        const r = await crashSoak({ ...options, messages: 2000, consumers: 4, timeoutMs: 180_000 });
        console.log(JSON.stringify(r));
        expect(r.completed).toBe(true);
        expect(r.sent).toBe(2000);
        expect(r.kills).toBeGreaterThan(0);
        expect(r.consumerExits).toEqual([]);
        expect(r.serverRestarts).toBe(1);
        expect(r.lost).toBe(0);
        expect(r.delivered).toBe(2000);
        expect(r.leftInQueue).toBe(0);
        expect(r.dead).toBe(0);
        expect(r.earlyRedeliveries).toBe(0);
        expect(r.unexplainedDuplicates).toBe(0);
      }, 300_000);
    }
  },
);
