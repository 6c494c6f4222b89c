/** The storage's own operations: a health check of the backend, and the sweep of expired data. */
import { BackendUnavailableError } from '../../errors.js';
import { MAX_MAINTENANCE_BATCH } from '../../limits.js';
import type { Driver } from '../driver.js';
import type { HealthReport, SweepReport } from '../types.js';
import { checkInt, checkOptions } from '../validate.js';

/** Pings the backend: `ok`, `degraded` when it warns, `down` when it does not answer. */
export async function checkHealth(driver: Driver): Promise<HealthReport> {
  const started = performance.now();
  try {
    await driver.ping();
    const latencyMs = round2(performance.now() - started);
    const warnings = driver.warnings?.() ?? [];
    const durability = (await driver.durabilityWarnings?.().catch(() => [])) ?? [];
    const check = {
      ok: true,
      latencyMs,
      ...(warnings.length > 0 ? { error: warnings.join('; ') } : {}),
      ...(durability.length > 0 ? { warnings: durability } : {}),
    };
    return {
      status: warnings.length > 0 ? 'degraded' : 'ok',
      backend: driver.name,
      checks: { [driver.name]: check },
    };
  } catch (error) {
    const latencyMs = round2(performance.now() - started);
    const message = error instanceof BackendUnavailableError ? error.message : 'not answering';
    return {
      status: 'down',
      backend: driver.name,
      checks: { [driver.name]: { ok: false, latencyMs, error: message } },
    };
  }
}

/** Removes expired data in batches of `options.batchSize` (default: the configured `ttl.batchSize`). */
export async function sweep(
  driver: Driver,
  options: unknown,
  defaultBatchSize: number,
): Promise<SweepReport> {
  const o = checkOptions('options', options, ['batchSize']);
  const batchSize =
    o.batchSize === undefined
      ? defaultBatchSize
      : checkInt('options.batchSize', o.batchSize, 1, MAX_MAINTENANCE_BATCH);
  const started = performance.now();
  const counts = await driver.sweep(batchSize);
  return { ...counts, durationMs: round2(performance.now() - started) };
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
