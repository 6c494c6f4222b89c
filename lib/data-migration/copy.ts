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

import { auditPlan } from './copy/audit-plan.js';
import type { CopyOptions, CopyProgress, CopyReport, StoreReport } from './copy/report.js';
import { SettleLag, settle } from './copy/settle.js';
import { checkpointOf, type JobState, jobStateOf, type StoreState } from './copy/state.js';
import type { PgTarget } from './pg-target.js';
import { idOf, type RecordOf, STORES, type StoreName } from './records.js';
import type { RecordSource, SourceBatch } from './source.js';

export type { CopyOptions, CopyProgress, CopyReport, StoreReport } from './copy/report.js';

export function jobName(source: RecordSource, target: PgTarget): string {
  return `copy ${source.layout} ${source.name} -> ${target.name} schema ${target.schema}`;
}

/** One run of `copy`: its options, the job state it checkpoints, its report and running totals. */
interface CopyRun {
  options: CopyOptions;
  job: string;
  batchSize: number;
  verify: boolean;
  state: JobState;
  report: CopyReport;
  started: number;
  totals: { read: number; estimate?: number };
  estimates: Map<StoreName, number | undefined>;
}

export async function copy(options: CopyOptions): Promise<CopyReport> {
  const { source, target } = options;
  const job = options.job ?? jobName(source, target);
  const stores = (options.stores ?? source.stores).filter((store) => source.stores.includes(store));
  const order = STORES.filter((store) => stores.includes(store));
  if (options.move && !source.remove)
    throw new Error(`${source.name}: this source cannot move items, only copy them`);

  const checkpoint = options.dryRun ? undefined : await target.loadCheckpoint(job);
  const previous = jobStateOf(checkpoint?.state);
  const run: CopyRun = {
    options,
    job,
    batchSize: options.batchSize ?? 1000,
    verify: options.verify ?? true,
    state: {
      stores: options.restart ? {} : { ...previous.stores },
      auditMark: previous.auditMark,
      moving: previous.moving,
    },
    report: {
      job,
      source: source.name,
      target: `${target.name} schema ${target.schema}`,
      dryRun: options.dryRun === true,
      resumed: !options.restart && checkpoint !== undefined && checkpoint.finishedAt === null,
      interrupted: false,
      stores: {},
      durationMs: 0,
      rate: 0,
    },
    started: Date.now(),
    totals: { read: 0 },
    estimates: new Map(),
  };

  // Sizes for progress and ETA are counted alongside the copy (a SCAN of names costs time of its
  // own): until they are known, progress shows counts and rate only. A store that cannot be
  // counted cheaply (queue dedup ids) is left out of the total.
  const estimating = (async () => {
    for (const store of order) run.estimates.set(store, await source.estimate(store));
    run.totals.estimate = [...run.estimates.values()].reduce<number>((sum, n) => sum + (n ?? 0), 0);
  })().catch(() => {});

  for (const store of order) {
    await copyStore(run, store);
    if (run.report.interrupted) break;
  }

  if (!options.dryRun && !run.report.interrupted) {
    // Finished: the next run of this job starts from the beginning (audit goes on from its mark).
    // (`moving` is empty here: the last batch's items were deleted before the loop ended.)
    await target.saveCheckpoint(
      job,
      checkpointOf({ stores: {}, auditMark: run.state.auditMark ?? null }),
      true,
    );
  }
  await estimating;
  const report = run.report;
  report.durationMs = Date.now() - run.started;
  report.rate = report.durationMs > 0 ? (run.totals.read * 1000) / report.durationMs : 0;
  return report;
}

/** Copies one store from where its checkpoint stands; stops after the current batch when interrupted. */
async function copyStore<S extends StoreName>(run: CopyRun, store: S): Promise<void> {
  const { options, state, job } = run;
  const { source, target } = options;
  const storeStarted = Date.now();
  const storeState: StoreState = state.stores[store] ?? {};
  state.stores[store] = storeState;
  const storeReport: StoreReport = {
    read: 0,
    written: 0,
    rewritten: 0,
    removed: 0,
    matched: 0,
    moved: 0,
    skipped: {},
    estimate: run.estimates.get(store),
    durationMs: 0,
    done: false,
  };
  run.report.stores[store] = storeReport;
  const progress = (phase: CopyProgress['phase']) => {
    storeReport.estimate ??= run.estimates.get(store);
    options.onProgress?.({
      store,
      phase,
      report: storeReport,
      totalRead: run.totals.read,
      totalEstimate: run.totals.estimate,
      elapsedMs: Date.now() - run.started,
    });
  };
  if (storeState.done) {
    // This run's numbers only: the store was copied by the run this one resumes.
    storeReport.done = true;
    storeReport.skipped['copied by the run this one resumes'] = storeState.read ?? 0;
    progress('end');
    return;
  }
  progress('start');
  if (state.moving?.store === store && source.remove && !options.dryRun) {
    storeReport.moved += await source.remove(store, state.moving.ids);
    state.moving = undefined;
    await target.saveCheckpoint(job, checkpointOf(state));
  }

  const cursor = store === 'audit' ? (state.auditMark ?? undefined) : storeState.cursor;
  const iterator = source.batches(store, cursor, run.batchSize)[Symbol.asyncIterator]();
  const lag =
    run.verify && source.mutable(store) && !options.dryRun ? new SettleLag(cursor, storeState) : undefined;
  const write = batchWriter(run, store, storeState, storeReport, lag);
  let next = iterator.next();
  for (;;) {
    const step = await next;
    if (step.done) break;
    if (options.signal?.aborted) {
      run.report.interrupted = true;
      break;
    }
    // Read ahead while this batch is written.
    next = iterator.next();
    next.catch(() => {}); // surfaces at the next await
    await write(step.value);
    progress('batch');
  }
  await lag?.settled();
  storeReport.durationMs = Date.now() - storeStarted;
  if (run.report.interrupted) {
    // The read ahead is dropped; the checkpoint is at the last written (and settled) batch.
    await iterator.return?.();
    if (!options.dryRun) await target.saveCheckpoint(job, checkpointOf(state));
    progress('end');
    return;
  }
  storeState.done = true;
  storeReport.done = true;
  if (!options.dryRun) await target.saveCheckpoint(job, checkpointOf(state));
  progress('end');
}

/** Writes one batch of `store` with the checkpoint past it: audit filtered, settling started, moved items deleted. */
function batchWriter<S extends StoreName>(
  run: CopyRun,
  store: S,
  storeState: StoreState,
  storeReport: StoreReport,
  lag: SettleLag | undefined,
): (batch: SourceBatch<S>) => Promise<void> {
  const { options, state, job } = run;
  const { source, target } = options;
  const audit = store === 'audit' ? auditPlan(options) : undefined;
  return async (batch) => {
    for (const [reason, n] of Object.entries(batch.skipped ?? {}))
      storeReport.skipped[reason] = (storeReport.skipped[reason] ?? 0) + n;
    storeReport.read += batch.records.length;
    run.totals.read += batch.records.length;
    const records = audit ? await audit.filter(batch.records, storeReport) : batch.records;

    storeState.cursor = lag ? lag.settledCursor : batch.cursor;
    const lastAudit = store === 'audit' ? lastSourceId(batch.records) : undefined;
    if (lastAudit !== undefined) state.auditMark = lastAudit;
    const moving = options.move && (store === 'queues' || store === 'dedup') && records.length > 0;
    state.moving = moving ? { store, ids: records.map((record) => idOf(store, record)) } : undefined;
    if (!options.dryRun) {
      const writing = target.write(store, records, { job, state: checkpointOf(state) }, batch.counters);
      await Promise.all([writing, lag?.settled()]);
      storeReport.written += records.length;
      if (lag) {
        if (records.length > 0) lag.start(settle(source, target, store, records, storeReport), batch.cursor);
        else lag.settledAt(batch.cursor);
      }
      if (moving && state.moving && source.remove) {
        storeReport.moved += await source.remove(store, state.moving.ids);
        state.moving = undefined; // the next checkpoint written no longer names them
      }
    }
    storeState.read = (storeState.read ?? 0) + records.length;
    storeState.written = storeReport.written;
  };
}

/** The source id of the last audit entry of a batch (the audit mark), if the batch is audit's. */
function lastSourceId(records: RecordOf[StoreName][]): string | undefined {
  const last = records[records.length - 1];
  return last !== undefined && 'sourceId' in last ? last.sourceId : undefined;
}
