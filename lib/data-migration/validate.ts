/**
 * `validate`: compares a source with the PostgreSQL target, store by store — counts, every item
 * (or a random sample of `sample` per store) field by field, times within a tolerance — and
 * answers a report of every mismatch. Under live traffic an item can differ for a moment (the
 * dual-write mirror has not landed yet), so each mismatch is looked at once more, on both sides,
 * before it is reported.
 *
 * Audit entries get new ids on the target, so they are matched by content: each source entry
 * with a target entry of the same content within the tolerance, one to one.
 */
import { type AuditRecord, STORES, type StoreName } from './records.js';
import { matchAudit, sampleEntries } from './validate/audit.js';
import { validateEvery, validateSample } from './validate/items.js';
import {
  type StoreValidation,
  type ValidateOptions,
  ValidationInterrupted,
  type ValidationReport,
} from './validate/report.js';
import { StoreTally } from './validate/tally.js';

export type {
  Mismatch,
  StoreValidation,
  ValidateOptions,
  ValidationReport,
} from './validate/report.js';
export { ValidationInterrupted };

export async function validate(options: ValidateOptions): Promise<ValidationReport> {
  const { source } = options;
  const settings = {
    toleranceMs: options.toleranceMs ?? 2000,
    batchSize: options.batchSize ?? 1000,
    listLimit: options.listLimit ?? 20,
  };
  const stores = STORES.filter(
    (store) => (options.stores ?? source.stores).includes(store) && source.stores.includes(store),
  );
  const started = Date.now();
  const report: ValidationReport = {
    source: source.name,
    target: `${options.target.name} schema ${options.target.schema}`,
    sample: options.sample,
    toleranceMs: settings.toleranceMs,
    stores: {},
    ok: true,
    durationMs: 0,
  };
  for (const store of stores) {
    const result = await validateStore(options, settings, store);
    report.stores[store] = result;
    // Counts are reported, not judged: under live traffic the target's count (taken last) can
    // include items created after the source was listed; every item itself was compared.
    report.ok &&= result.ok;
  }
  report.durationMs = Date.now() - started;
  return report;
}

async function validateStore<S extends StoreName>(
  options: ValidateOptions,
  settings: { toleranceMs: number; batchSize: number; listLimit: number },
  store: S,
): Promise<StoreValidation> {
  const { source, target } = options;
  const tally = new StoreTally(settings.listLimit, settings.toleranceMs);
  const estimate = await source.estimate(store);
  if (store === 'audit') {
    await validateAudit(options, settings.batchSize, settings.toleranceMs, tally);
  } else {
    const run = {
      source,
      target,
      store,
      batchSize: settings.batchSize,
      toleranceMs: settings.toleranceMs,
      tally,
      signal: options.signal,
      onProgress: (counted: number) => options.onProgress?.(store, counted, estimate),
    };
    if (options.sample === undefined) await validateEvery(run);
    else await validateSample(run, options.sample, random());
  }
  return tally.finish(await target.count(store));
}

async function validateAudit(
  options: ValidateOptions,
  batchSize: number,
  toleranceMs: number,
  tally: StoreTally,
): Promise<void> {
  const sourceEntries: AuditRecord[] = [];
  for await (const batch of options.source.batches('audit', undefined, batchSize)) {
    if (options.signal?.aborted) throw new ValidationInterrupted();
    sourceEntries.push(...batch.records);
  }
  tally.result.sourceCount = sourceEntries.length;
  const targetEntries: AuditRecord[] = [];
  for await (const rows of options.target.scan('audit', batchSize)) targetEntries.push(...rows);
  const sampled = options.sample !== undefined && options.sample < sourceEntries.length;
  const compared = sampled ? sampleEntries(sourceEntries, options.sample ?? 0, random()) : sourceEntries;
  matchAudit(compared, targetEntries, toleranceMs, options.sample === undefined, tally);
}

/** A small seeded generator (mulberry32): a sample is random, and a run can be repeated in a test. */
function random(seed = Date.now() >>> 0): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
