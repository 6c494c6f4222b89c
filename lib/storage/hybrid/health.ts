/** The hybrid's health: every backend's own check, and whether every data type is still served. */
import { BackendUnavailableError } from '../../errors.js';
import type { HealthCheck, HealthReport } from '../types.js';
import {
  deadlineOf,
  fallbacksOf,
  type HybridContext,
  type Member,
  memberOf,
  withDeadline,
} from './context.js';
import { JOURNAL_QUEUES } from './journal.js';
import type { BackendName } from './settings.js';

async function checkOf(ctx: HybridContext, m: Member): Promise<HealthCheck> {
  const deadline = Math.max(ctx.settings.operationTimeoutMs, 1000);
  const started = performance.now();
  try {
    await withDeadline(m.driver.ping(), deadline, m.name);
    const latencyMs = Math.round((performance.now() - started) * 100) / 100;
    const warnings = m.driver.warnings?.() ?? [];
    const durability = m.driver.durabilityWarnings
      ? await withDeadline(m.driver.durabilityWarnings(), deadline, m.name).catch(() => [])
      : [];
    return {
      ok: true,
      latencyMs,
      ...(warnings.length > 0 ? { error: warnings.join('; ') } : {}),
      ...(durability.length > 0 ? { warnings: durability } : {}),
    };
  } catch (error) {
    return {
      ok: false,
      latencyMs: Math.round((performance.now() - started) * 100) / 100,
      error: error instanceof BackendUnavailableError ? error.message : 'not answering',
    };
  }
}

/** `ok` when every backend answers without warnings, `degraded` while every data type is still served. */
export async function hybridHealth(ctx: HybridContext): Promise<HealthReport> {
  const checks: Record<string, HealthCheck> = {};
  await Promise.all(
    [...ctx.members.values()].map(async (m) => {
      checks[m.name] = await checkOf(ctx, m);
    }),
  );
  const up = (name: BackendName) => checks[name]?.ok === true;
  const served = Object.values(ctx.settings.routing).every((name) => {
    const primary = memberOf(ctx, name);
    return up(primary.name) || fallbacksOf(ctx, primary).some((m) => up(m.name));
  });
  const allUp = [...ctx.members.keys()].every(up);
  const warned = Object.values(checks).some((check) => check.ok && check.error !== undefined);
  return { status: allUp && !warned ? 'ok' : served ? 'degraded' : 'down', backend: 'hybrid', checks };
}

/** Entries waiting in each backend's journals (leased and dead ones included); unreadable ones left out. */
export async function journalDepth(ctx: HybridContext): Promise<Partial<Record<BackendName, number>>> {
  const depths: Partial<Record<BackendName, number>> = {};
  for (const m of ctx.members.values()) {
    try {
      let waiting = 0;
      for (const queue of JOURNAL_QUEUES) {
        const left = await withDeadline(m.driver.queues.stats(queue), deadlineOf(ctx, m), m.name);
        waiting += left.depth + left.inFlight + left.dead;
      }
      depths[m.name] = waiting;
      ctx.emit('JournalDepth', waiting, 'Count', { backend: m.name });
    } catch {
      // Unreadable now: its breaker and health check say so.
    }
  }
  return depths;
}
