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

async function checkOf(ctx: HybridContext, member: Member): Promise<HealthCheck> {
  const deadline = Math.max(ctx.settings.operationTimeoutMs, 1000);
  const started = performance.now();
  try {
    await withDeadline(member.driver.ping(), deadline, member.name);
    const latencyMs = Math.round((performance.now() - started) * 100) / 100;
    const warnings = member.driver.warnings?.() ?? [];
    const durability = member.driver.durabilityWarnings
      ? await withDeadline(member.driver.durabilityWarnings(), deadline, member.name).catch(() => [])
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
  for (const member of ctx.members.values()) {
    try {
      let waiting = 0;
      for (const queue of JOURNAL_QUEUES) {
        const left = await withDeadline(
          member.driver.queues.stats(queue),
          deadlineOf(ctx, member),
          member.name,
        );
        waiting += left.depth + left.inFlight + left.dead;
      }
      depths[member.name] = waiting;
      ctx.emit('JournalDepth', waiting, 'Count', { backend: member.name });
    } catch {
      // Unreadable now: its breaker and health check say so.
    }
  }
  return depths;
}
