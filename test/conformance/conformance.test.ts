/**
 * The storage conformance suite: the same tests on every backend (test/support/backends.ts).
 * Titles read `conformance [backend] > store > …`, so the output shows which backends ran.
 *
 * An unreachable backend fails the run under CI and is skipped loudly elsewhere: every test
 * still appears, as skipped, under a title that says why.
 */
import { describe, it } from 'vitest';
import { type Backend, installHint, selectedBackends } from '../support/backends.js';
import { useBackend } from '../support/fixture.js';
import { describeAudit } from './audit.js';
import { describeConnections } from './connections.js';
import { describeConsumers } from './consumers.js';
import { describeEvents } from './events.js';
import { describeKv } from './kv.js';
import { describeLineage } from './lineage.js';
import { describePaging } from './paging.js';
import { describeQueues } from './queues.js';
import { describeSessions } from './sessions.js';
import { describeStorage } from './storage.js';
import { describeTokens } from './tokens.js';
import { describeValidation } from './validation.js';

function describeConformance(backend: Backend): void {
  const f = useBackend(backend);
  describeKv(f);
  describeSessions(f);
  describeQueues(f);
  describeEvents(f);
  describeTokens(f);
  describeLineage(f);
  describePaging(f);
  describeAudit(f);
  describeConnections(f);
  describeConsumers(f);
  describeStorage(f);
  describeValidation(f);
}

for (const backend of selectedBackends()) {
  const unavailable = await backend.available();
  if (unavailable === undefined) {
    describe(`conformance [${backend.name}]`, () => describeConformance(backend));
  } else if (process.env.CI) {
    describe(`conformance [${backend.name}]`, () => {
      it(`${backend.name} is reachable (required under CI)`, () => {
        throw new Error(`${backend.name} is unavailable under CI: ${unavailable}`);
      });
    });
  } else {
    const reason = `${unavailable} (${installHint(backend)})`;
    console.warn(`\n⚠ conformance [${backend.name}] SKIPPED: ${reason}\n`);
    describe.skip(`conformance [${backend.name}] — SKIPPED: ${reason}`, () => describeConformance(backend));
  }
}
