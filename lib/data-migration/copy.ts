/**
 * `copy`: moves every store of a source into the PostgreSQL target, batch by batch, each batch
 * committed together with the checkpoint past it (see `pg-target.ts`). The next batch is read
 * while the current one is written, so the source and the target work at the same time.
 *
 * Resuming: the job's checkpoint (in the target's `data_migrations`) holds each store's read
 * position; a copy started again with the same source and target goes on from there. A store
 * that is done is not read again unless the copy is restarted (`restart`), which reads every
 * store from the start — upserts make that harmless, and audit entries (append-only, new ids on
 * the target) keep their own high-water mark, so they are never appended twice.
 *
 * Live sources (dual-write): an item of a mutable store (kv, sessions, tokens, connections) can
 * change between the read and the write, and the dual-write mirror of that change may land on
 * the target *before* the copy's older value. So after each batch the copy reads the batch's
 * items from the source again and writes those that changed (or removes those that are gone)
 * until the source and what it wrote agree: whatever the order of mirror and copy, the target
 * ends with the source's latest state.
 */

import type { PgTarget } from './pg-target.js';
import {
  type AnyRecord,
  type AuditRecord,
  auditContentId,
  compareRecords,
  idOf,
  type RecordOf,
  STORES,
  type StoreName,
} from './records.js';
import type { Cursor, RecordSource } from './source.js';

export interface CopyOptions {
  source: RecordSource;
  target: PgTarget;
  /** The checkpoint's name; default derived from source and target. */
  job?: string;
  /** Items per batch (default 1000). */
  batchSize?: number;
  /** Stores to copy (default: every store the source holds). */
  stores?: readonly StoreName[];
  /** Read and count everything, write nothing (no checkpoint either). */
  dryRun?: boolean;
  /** Ignore the checkpoint's positions and read every store from the start (audit keeps its mark). */
  restart?: boolean;
  /** Re-read each batch of a mutable store and rewrite what changed meanwhile (default true). */
  verify?: boolean;
  /**
   * Dual-write: from this time (ms) every writer mirrors audit entries to the target, so the copy
   * appends only older ones; entries within `auditWindowMs` before it (a rollout, when some
   * writers mirrored and some did not), up to and including its own millisecond (the source
   * stamps entries to the millisecond), are reconciled by content instead.
   */
  dualWriteSinceMs?: number;
  /** Length of that reconciled window (default 15 minutes). */
  auditWindowMs?: number;
  /** Times equal within this are the same (verification, audit matching); default 1000 ms. */
  toleranceMs?: number;
  /**
   * Queues: delete each batch of messages (and dedup ids) from the source once the target
   * committed it — for a queue whose routing already moved to the target, so what is left on
   * the source is delivered from the target only. Needs a source that can `remove`.
   */
  move?: boolean;
  /** Called after every batch and when a store starts and ends. */
  onProgress?: (progress: CopyProgress) => void;
  /** Stops after the batch being written (Ctrl-C): the checkpoint is where the next run starts. */
  signal?: AbortSignal;
}

export interface StoreReport {
  /** Items read from the source (live ones; expired and reserved ones are in `skipped`). */
  read: number;
  /** Items written to the target (0 in a dry run). */
  written: number;
  /** Items written again because the source changed them during the copy, or removed because it deleted them. */
  rewritten: number;
  removed: number;
  /** Audit entries already on the target (mirrored by dual-write), not appended again. */
  matched: number;
  /** Items deleted from the source after the target committed them (`move`). */
  moved: number;
  skipped: Record<string, number>;
  /** Estimated size before the copy, for progress; undefined when unknown. */
  estimate?: number;
  durationMs: number;
  done: boolean;
}

export interface CopyProgress {
  store: StoreName;
  phase: 'start' | 'batch' | 'end';
  report: StoreReport;
  /** All stores so far. */
  totalRead: number;
  totalEstimate?: number;
  elapsedMs: number;
}

export interface CopyReport {
  job: string;
  source: string;
  target: string;
  dryRun: boolean;
  /** The copy went on from an earlier run's checkpoint. */
  resumed: boolean;
  /** Stopped by `signal` before the end: run again to resume. */
  interrupted: boolean;
  stores: Partial<Record<StoreName, StoreReport>>;
  durationMs: number;
  /** Items read per second over the whole run. */
  rate: number;
}

interface StoreState {
  cursor?: Cursor;
  done?: boolean;
  read?: number;
  written?: number;
}

interface JobState {
  stores: Partial<Record<StoreName, StoreState>>;
  /** The last audit entry (source id) appended: audit is never appended twice. */
  auditMark?: string;
  /**
   * `move`: items the target committed (in the same transaction as this checkpoint) and the
   * source may still hold. A run that stopped before deleting them from the source leaves them
   * here, and the next run deletes them first — else a later move would bring back messages
   * already delivered and acked on the target.
   */
  moving?: { store: StoreName; ids: string[] };
}

const VERIFY_ROUNDS = 5;
const SETTLE_TOLERANCE_MS = 50;

export function jobName(source: RecordSource, target: PgTarget): string {
  return `copy ${source.layout} ${source.name} -> ${target.name} schema ${target.schema}`;
}

export async function copy(options: CopyOptions): Promise<CopyReport> {
  const { source, target } = options;
  const batchSize = options.batchSize ?? 1000;
  const job = options.job ?? jobName(source, target);
  const stores = (options.stores ?? source.stores).filter((s) => source.stores.includes(s));
  const order = STORES.filter((s) => stores.includes(s));
  const verify = options.verify ?? true;
  const started = Date.now();
  if (options.move && !source.remove)
    throw new Error(`${source.name}: this source cannot move items, only copy them`);

  const checkpoint = options.dryRun ? undefined : await target.loadCheckpoint(job);
  const previous = (checkpoint?.state ?? { stores: {} }) as unknown as JobState;
  const state: JobState = {
    stores: options.restart ? {} : { ...previous.stores },
    auditMark: previous.auditMark,
    moving: previous.moving,
  };
  const resumed = !options.restart && checkpoint !== undefined && checkpoint.finishedAt === null;

  const report: CopyReport = {
    job,
    source: source.name,
    target: `${target.name} schema ${target.schema}`,
    dryRun: options.dryRun === true,
    resumed,
    interrupted: false,
    stores: {},
    durationMs: 0,
    rate: 0,
  };

  // Sizes for progress and ETA are counted alongside the copy (a SCAN of names costs time of its
  // own): until they are known, progress shows counts and rate only. A store that cannot be
  // counted cheaply (queue dedup ids) is left out of the total.
  const estimates = new Map<StoreName, number | undefined>();
  let totalEstimate: number | undefined;
  const estimating = (async () => {
    for (const store of order) estimates.set(store, await source.estimate(store));
    totalEstimate = [...estimates.values()].reduce<number>((sum, n) => sum + (n ?? 0), 0);
  })().catch(() => {});
  let totalRead = 0;

  const save = (): Cursor => state as unknown as Cursor;

  for (const store of order) {
    const storeStarted = Date.now();
    const s: StoreState = state.stores[store] ?? {};
    state.stores[store] = s;
    const r: StoreReport = {
      read: 0,
      written: 0,
      rewritten: 0,
      removed: 0,
      matched: 0,
      moved: 0,
      skipped: {},
      estimate: estimates.get(store),
      durationMs: 0,
      done: false,
    };
    report.stores[store] = r;
    const progress = (phase: CopyProgress['phase']) => {
      r.estimate ??= estimates.get(store);
      options.onProgress?.({
        store,
        phase,
        report: r,
        totalRead,
        totalEstimate,
        elapsedMs: Date.now() - started,
      });
    };
    if (s.done) {
      // This run's numbers only: the store was copied by the run this one resumes.
      r.done = true;
      r.skipped['copied by the run this one resumes'] = s.read ?? 0;
      progress('end');
      continue;
    }
    progress('start');
    if (state.moving?.store === store && source.remove && !options.dryRun) {
      r.moved += await source.remove(store, state.moving.ids);
      state.moving = undefined;
      await target.saveCheckpoint(job, save());
    }

    const audit = store === 'audit' ? auditPlan(options, state.auditMark) : undefined;
    const cursor = store === 'audit' ? (state.auditMark ?? undefined) : s.cursor;
    const iterator = source.batches(store, cursor, batchSize)[Symbol.asyncIterator]();
    // A mutable store's batch is settled (re-read, rewritten) while the next one is written. The
    // checkpoint then names the last *settled* batch, so a resumed copy reads an unsettled one
    // again rather than trusting it.
    const lagging = verify && source.mutable(store) && !options.dryRun;
    let settledCursor = cursor;
    let settling: Promise<void> | undefined;
    let settlingCursor: Cursor | undefined;
    const settled = async () => {
      if (!settling) return;
      await settling;
      settling = undefined;
      settledCursor = settlingCursor;
      s.cursor = settledCursor;
    };
    let next = iterator.next();
    for (;;) {
      const step = await next;
      if (step.done) break;
      if (options.signal?.aborted) {
        report.interrupted = true;
        break;
      }
      // Read ahead while this batch is written.
      next = iterator.next();
      next.catch(() => {}); // surfaces at the next await
      const batch = step.value;
      for (const [reason, n] of Object.entries(batch.skipped ?? {}))
        r.skipped[reason] = (r.skipped[reason] ?? 0) + n;
      let records = batch.records as AnyRecord[];
      r.read += records.length;
      totalRead += records.length;

      if (audit) records = await audit.filter(records as AuditRecord[], r);

      s.cursor = lagging ? settledCursor : batch.cursor;
      if (store === 'audit' && (batch.records as AuditRecord[]).length > 0) {
        state.auditMark = (batch.records as AuditRecord[])[batch.records.length - 1]!.sourceId;
      }
      const moving = options.move && (store === 'queues' || store === 'dedup') && records.length > 0;
      state.moving = moving ? { store, ids: records.map((x) => idOf(store, x as never)) } : undefined;
      if (!options.dryRun) {
        const writing = target.write(
          store,
          records as RecordOf[typeof store][],
          { job, state: save() },
          batch.counters,
        );
        await Promise.all([writing, settled()]);
        r.written += records.length;
        if (lagging) {
          if (records.length > 0) {
            settling = settle(store, records, r);
            settling.catch(() => {}); // surfaces at the next settled()
            settlingCursor = batch.cursor;
          } else {
            settledCursor = batch.cursor;
            s.cursor = settledCursor;
          }
        }
        if (moving && state.moving) {
          r.moved += await source.remove!(store, state.moving.ids);
          state.moving = undefined; // the next checkpoint written no longer names them
        }
      }
      s.read = (s.read ?? 0) + records.length;
      s.written = r.written;
      progress('batch');
    }
    await settled();
    if (report.interrupted) {
      // The read ahead is dropped; the checkpoint is at the last written (and settled) batch.
      await iterator.return?.();
      if (!options.dryRun) await target.saveCheckpoint(job, save());
      r.durationMs = Date.now() - storeStarted;
      progress('end');
      break;
    }
    s.done = true;
    r.done = true;
    r.durationMs = Date.now() - storeStarted;
    if (!options.dryRun) await target.saveCheckpoint(job, save());
    progress('end');
  }

  if (!options.dryRun && !report.interrupted) {
    // Finished: the next run of this job starts from the beginning (audit goes on from its mark).
    await target.saveCheckpoint(
      job,
      { stores: {}, auditMark: state.auditMark ?? null } as unknown as Cursor,
      true,
    );
    // (`moving` is empty here: the last batch's items were deleted before the loop ended.)
  }
  await estimating;
  report.durationMs = Date.now() - started;
  report.rate = report.durationMs > 0 ? (totalRead * 1000) / report.durationMs : 0;
  return report;

  /** Re-reads written items until the source agrees with what was written (see the header). */
  async function settle(store: StoreName, written: AnyRecord[], r: StoreReport): Promise<void> {
    // What the target was last given for each item: a record, or undefined once removed. An item
    // removed is looked at once more too: re-created on the source meanwhile, its mirror may have
    // landed just before the removal.
    let pending: { id: string; last: AnyRecord | undefined }[] = written.map((x) => ({
      id: idOf(store, x as never),
      last: x,
    }));
    for (let round = 0; round < VERIFY_ROUNDS && pending.length > 0; round++) {
      const current = await source.fetch(
        store,
        pending.map((p) => p.id),
      );
      const changed: AnyRecord[] = [];
      const gone: string[] = [];
      const next: typeof pending = [];
      current.forEach((now, i) => {
        const { id, last } = pending[i]!;
        if (now === undefined) {
          if (last !== undefined) {
            gone.push(id);
            next.push({ id, last: undefined });
          }
          return;
        }
        // 50 ms: an expiry recomputed from a remaining TTL moves by a millisecond or two between
        // reads; a keep-alive or a new value moves it (or the value) by more.
        if (
          last === undefined ||
          compareRecords(store, last as never, now as never, SETTLE_TOLERANCE_MS).kind !== 'same'
        ) {
          changed.push(now);
          next.push({ id, last: now });
        }
      });
      if (gone.length > 0) {
        await target.remove(store, gone);
        r.removed += gone.length;
      }
      if (changed.length > 0) {
        await target.write(store, changed as never, undefined);
        r.rewritten += changed.length;
      }
      pending = next;
    }
    if (pending.length > 0) r.skipped['still changing after 5 re-reads (validate them)'] = pending.length;
  }
}

/**
 * The audit part of a dual-write copy: entries before the window are appended, entries in it
 * only where the target has fewer entries of that content in the window than the source (so
 * running it again appends nothing), entries after it are the mirror's. The window includes
 * `since`'s own millisecond: a writer that did not mirror can stamp an entry with it, and such an
 * entry taken for the mirror's would never reach the target. It ends there: an entry stamped
 * later is the mirror's even while its mirror is still on its way (compared by content, it would
 * be appended by the copy and then again by the mirror).
 */
function auditPlan(options: CopyOptions, _mark: string | undefined) {
  const since = options.dualWriteSinceMs;
  if (since === undefined) return { filter: async (records: AuditRecord[]) => records };
  const windowStart = since - (options.auditWindowMs ?? 15 * 60_000);
  const tolerance = options.toleranceMs ?? 1000;
  let onTarget: Map<string, number[]> | undefined;
  return {
    async filter(records: AuditRecord[], r: StoreReport): Promise<AuditRecord[]> {
      const out: AuditRecord[] = [];
      for (const record of records) {
        if (record.atMs < windowStart) {
          out.push(record);
          continue;
        }
        if (record.atMs > since) {
          r.skipped['mirrored by dual-write'] = (r.skipped['mirrored by dual-write'] ?? 0) + 1;
          continue;
        }
        if (!onTarget) {
          onTarget = new Map();
          for (const e of await options.target.auditBetween(windowStart - tolerance, since + tolerance)) {
            const key = auditContentId(e);
            const list = onTarget.get(key) ?? [];
            list.push(e.atMs);
            onTarget.set(key, list);
          }
        }
        // The target entry nearest in time (entries of one content, e.g. a poll every 2 s, must
        // not pair with a neighbour's mirror).
        const list = onTarget.get(auditContentId(record));
        let match = -1;
        for (let i = 0; i < (list?.length ?? 0); i++) {
          const drift = Math.abs(list![i]! - record.atMs);
          if (drift <= tolerance && (match < 0 || drift < Math.abs(list![match]! - record.atMs))) match = i;
        }
        if (list && match >= 0) {
          list.splice(match, 1);
          r.matched += 1;
        } else out.push(record);
      }
      return out;
    },
  };
}
