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
import type { PgTarget } from './pg-target.js';
import {
  type AnyRecord,
  type AuditRecord,
  auditContentId,
  compareRecords,
  type Difference,
  idOf,
  type RecordOf,
  STORES,
  type StoreName,
} from './records.js';
import type { RecordSource } from './source.js';

export interface ValidateOptions {
  source: RecordSource;
  target: PgTarget;
  stores?: readonly StoreName[];
  /** Compare this many randomly chosen items per store instead of every one (counts stay exact). */
  sample?: number;
  /** Times (expiries, creation times) equal within this are the same; default 2000 ms. */
  toleranceMs?: number;
  batchSize?: number;
  /** Mismatches listed per store and kind (all are counted); default 20. */
  listLimit?: number;
  onProgress?: (store: StoreName, checked: number, estimate: number | undefined) => void;
  /** Stops between batches (Ctrl-C): `validate` then throws `ValidationInterrupted`. */
  signal?: AbortSignal;
}

/** `validate` was stopped by its signal before it compared everything: there is no verdict. */
export class ValidationInterrupted extends Error {
  constructor() {
    super('validation interrupted before it compared everything: no verdict');
    this.name = 'ValidationInterrupted';
  }
}

export interface Mismatch {
  id: string;
  /** For `changed`: the first field that differs; for `ttl`: the time field. */
  field?: string;
  driftMs?: number;
}

export interface StoreValidation {
  sourceCount: number;
  targetCount: number;
  /** Items compared (all of the source's, or the sample). */
  checked: number;
  matched: number;
  /** On the source, not on the target. */
  missing: number;
  /** On the target, not on the source (full runs only). */
  extra: number;
  /** A value or field differs. */
  changed: number;
  /** Only an expiry or time differs by more than the tolerance. */
  ttlDrift: number;
  examples: { missing: Mismatch[]; extra: Mismatch[]; changed: Mismatch[]; ttlDrift: Mismatch[] };
  ok: boolean;
}

export interface ValidationReport {
  source: string;
  target: string;
  sample?: number;
  toleranceMs: number;
  stores: Partial<Record<StoreName, StoreValidation>>;
  ok: boolean;
  durationMs: number;
}

export async function validate(options: ValidateOptions): Promise<ValidationReport> {
  const { source, target } = options;
  const toleranceMs = options.toleranceMs ?? 2000;
  const batchSize = options.batchSize ?? 1000;
  const listLimit = options.listLimit ?? 20;
  const stores = STORES.filter(
    (s) => (options.stores ?? source.stores).includes(s) && source.stores.includes(s),
  );
  const started = Date.now();
  const report: ValidationReport = {
    source: source.name,
    target: `${target.name} schema ${target.schema}`,
    sample: options.sample,
    toleranceMs,
    stores: {},
    ok: true,
    durationMs: 0,
  };

  for (const store of stores) {
    const v: StoreValidation = {
      sourceCount: 0,
      targetCount: 0,
      checked: 0,
      matched: 0,
      missing: 0,
      extra: 0,
      changed: 0,
      ttlDrift: 0,
      examples: { missing: [], extra: [], changed: [], ttlDrift: [] },
      ok: true,
    };
    report.stores[store] = v;
    const note = (kind: keyof StoreValidation['examples'], m: Mismatch) => {
      if (v.examples[kind].length < listLimit) v.examples[kind].push(m);
    };
    const estimate = await source.estimate(store);

    if (store === 'audit') {
      await validateAudit(v, note);
    } else {
      const sourceIds = options.sample === undefined ? new Set<string>() : undefined;
      const sample: AnyRecord[] = [];
      const rng = random();
      for await (const batch of source.batches(store, undefined, batchSize)) {
        if (options.signal?.aborted) throw new ValidationInterrupted();
        const records = batch.records as AnyRecord[];
        if (sourceIds) {
          for (const r of records) sourceIds.add(idOf(store, r as never));
          await compareBatch(store, records, v, note);
        } else {
          // Reservoir sampling: every item has the same chance, in one pass.
          for (const r of records) {
            v.sourceCount += 1;
            if (sample.length < (options.sample ?? 0)) sample.push(r);
            else {
              const j = Math.floor(rng() * v.sourceCount);
              if (j < sample.length) sample[j] = r;
            }
          }
        }
        options.onProgress?.(store, sourceIds ? v.checked : v.sourceCount, estimate);
      }
      if (sourceIds) {
        v.sourceCount = sourceIds.size;
        // Extras: on the target and not on the source — unless the source has them now.
        const extras: string[] = [];
        for await (const rows of target.scan(store, batchSize)) {
          if (options.signal?.aborted) throw new ValidationInterrupted();
          for (const row of rows) {
            const id = idOf(store, row as never);
            if (!sourceIds.has(id)) extras.push(id);
          }
        }
        for (let i = 0; i < extras.length; i += batchSize) {
          const ids = extras.slice(i, i + batchSize);
          const [nowSource, nowTarget] = await Promise.all([
            source.fetch(store, ids),
            target.fetch(store, ids),
          ]);
          ids.forEach((id, j) => {
            if (nowTarget[j] === undefined) return; // gone from the target meanwhile
            if (nowSource[j] !== undefined) {
              // Created on the source after it was listed: compare it like any other.
              v.sourceCount += 1;
              judge(store, id, nowSource[j] as AnyRecord, nowTarget[j] as AnyRecord, v, note);
              return;
            }
            v.extra += 1;
            note('extra', { id: printable(id) });
          });
        }
      } else {
        for (let i = 0; i < sample.length; i += batchSize)
          await compareBatch(store, sample.slice(i, i + batchSize), v, note);
      }
    }
    v.targetCount = await target.count(store);
    v.ok = v.missing === 0 && v.extra === 0 && v.changed === 0 && v.ttlDrift === 0;
    // Counts are reported, not judged: under live traffic the target's count (taken last) can
    // include items created after the source was listed; every item itself was compared.
    report.ok &&= v.ok;
  }
  report.durationMs = Date.now() - started;
  return report;

  async function compareBatch(
    store: StoreName,
    records: AnyRecord[],
    v: StoreValidation,
    note: (kind: keyof StoreValidation['examples'], m: Mismatch) => void,
  ) {
    const ids = records.map((r) => idOf(store, r as never));
    const onTarget = await target.fetch(store, ids);
    const again: number[] = [];
    records.forEach((r, i) => {
      const t = onTarget[i];
      if (t === undefined || compareRecords(store, r as never, t as never, toleranceMs).kind !== 'same')
        again.push(i);
      else {
        v.checked += 1;
        v.matched += 1;
      }
    });
    if (again.length === 0) return;
    // A second look at both sides: a mirror in flight, or an item that expired or changed since.
    const retryIds = again.map((i) => ids[i]!);
    const [nowSource, nowTarget] = await Promise.all([
      source.fetch(store, retryIds),
      target.fetch(store, retryIds),
    ]);
    retryIds.forEach((id, j) => {
      const s = nowSource[j] as AnyRecord | undefined;
      const t = nowTarget[j] as AnyRecord | undefined;
      if (s === undefined) {
        // Gone from the source meanwhile (ended, expired, acked): it counts as neither.
        if (t !== undefined) {
          v.extra += 1;
          note('extra', { id: printable(id) });
        }
        return;
      }
      judge(store, id, s, t, v, note);
    });
  }

  function judge(
    store: StoreName,
    id: string,
    s: AnyRecord,
    t: AnyRecord | undefined,
    v: StoreValidation,
    note: (kind: keyof StoreValidation['examples'], m: Mismatch) => void,
  ) {
    v.checked += 1;
    if (t === undefined) {
      v.missing += 1;
      note('missing', { id: printable(id) });
      return;
    }
    const d: Difference = compareRecords(
      store,
      s as RecordOf[typeof store],
      t as RecordOf[typeof store],
      toleranceMs,
    );
    if (d.kind === 'same') v.matched += 1;
    else if (d.kind === 'changed') {
      v.changed += 1;
      note('changed', { id: printable(id), field: d.field });
    } else {
      v.ttlDrift += 1;
      note('ttlDrift', { id: printable(id), field: d.field, driftMs: d.driftMs });
    }
  }

  async function validateAudit(
    v: StoreValidation,
    note: (kind: keyof StoreValidation['examples'], m: Mismatch) => void,
  ) {
    const sourceEntries: AuditRecord[] = [];
    for await (const batch of source.batches('audit', undefined, batchSize)) {
      if (options.signal?.aborted) throw new ValidationInterrupted();
      sourceEntries.push(...batch.records);
    }
    v.sourceCount = sourceEntries.length;
    const targetEntries: AuditRecord[] = [];
    for await (const rows of target.scan('audit', batchSize)) targetEntries.push(...rows);
    let compared = sourceEntries;
    if (options.sample !== undefined && options.sample < sourceEntries.length) {
      const rng = random();
      compared = [...sourceEntries];
      for (let i = compared.length - 1; i > 0; i--) {
        const j = Math.floor(rng() * (i + 1));
        [compared[i], compared[j]] = [compared[j]!, compared[i]!];
      }
      compared = compared.slice(0, options.sample).sort((a, b) => a.atMs - b.atMs);
    }
    // One to one by content. Per content, both sides in time order: each source entry takes the
    // earliest unmatched target entry within the tolerance (for intervals of one width this pairs
    // as many as any matching can); what is left pairs up as time drift, then missing or extra.
    const group = <T extends AuditRecord>(entries: T[]) => {
      const out = new Map<string, T[]>();
      for (const e of entries) {
        const key = auditContentId(e);
        const list = out.get(key) ?? [];
        list.push(e);
        out.set(key, list);
      }
      for (const list of out.values()) list.sort((a, b) => a.atMs - b.atMs);
      return out;
    };
    const byContent = group(targetEntries);
    const unmatched: AuditRecord[] = [];
    for (const [key, sources] of group(compared)) {
      const targets = byContent.get(key) ?? [];
      const left: AuditRecord[] = [];
      let j = 0;
      for (const e of sources) {
        v.checked += 1;
        while (j < targets.length && targets[j]!.atMs < e.atMs - toleranceMs) left.push(targets[j++]!);
        if (j < targets.length && targets[j]!.atMs <= e.atMs + toleranceMs) {
          j++;
          v.matched += 1;
        } else unmatched.push(e);
      }
      byContent.set(key, [...left, ...targets.slice(j)]);
    }
    for (const e of unmatched) {
      const list = byContent.get(auditContentId(e));
      if (list && list.length > 0) {
        // The nearest in time of what is left.
        let best = 0;
        for (let i = 1; i < list.length; i++) {
          if (Math.abs(list[i]!.atMs - e.atMs) < Math.abs(list[best]!.atMs - e.atMs)) best = i;
        }
        const [t] = list.splice(best, 1);
        v.ttlDrift += 1;
        note('ttlDrift', { id: e.sourceId, field: 'atMs', driftMs: Math.abs(t!.atMs - e.atMs) });
      } else {
        v.missing += 1;
        note('missing', { id: `${e.sourceId} ${e.identity} ${e.action}` });
      }
    }
    if (options.sample === undefined) {
      for (const list of byContent.values()) {
        for (const t of list) {
          v.extra += 1;
          note('extra', { id: `${t.sourceId} ${t.identity} ${t.action}` });
        }
      }
    }
  }
}

/** An id as a report shows it: the parts of a two-part id joined with a space. */
function printable(id: string): string {
  return id.replace('\u0000', ' ');
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
