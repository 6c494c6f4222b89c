/**
 * The crash soak, short: 2,000 messages, 4 consumer processes killed with SIGKILL at random and
 * started again, one server restart mid-run, on redis (a private Redis, `appendfsync always`),
 * postgresql (a private PostgreSQL) and hybrid (queues on a private Redis, falling back to
 * PostgreSQL). The full run (20,000 messages, 8 consumers): `npm run reliability:redis -- soak`.
 */
import { describe, expect, it } from 'vitest';
import { missingPostgresServer } from '../support/servers/postgres-server.js';
import { missingRedisBinaries } from '../support/servers/redis-server.js';
import { crashSoak, type SoakBackend } from './soak.js';

const missing = missingRedisBinaries(['redis-server']) ?? missingPostgresServer();
if (missing) console.warn(`\n⚠ test/reliability/soak SKIPPED: ${missing}\n`);

describe.skipIf(missing !== undefined)(
  `crash soak of queue consumers${missing ? ` — SKIPPED: ${missing}` : ''}`,
  () => {
    for (const backend of ['redis', 'postgresql', 'hybrid'] as SoakBackend[]) {
      it(`${backend}: every acknowledged message acked, none lost, no redelivery before its lease ended, duplicates only after kills`, async () => {
        const r = await crashSoak({ backend, messages: 2000, consumers: 4, timeoutMs: 180_000 });
        console.log(JSON.stringify(r));
        expect(r.completed).toBe(true);
        expect(r.sent).toBe(2000);
        expect(r.kills).toBeGreaterThan(0);
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
