import type { PgTarget } from '../pg-target.js';
import { type AnyRecord, type AuditRecord, auditContentId } from '../records.js';
import type { StoreReport } from './report.js';

const isAuditRecord = (record: AnyRecord): record is AuditRecord => 'sourceId' in record;

export interface AuditPlanOptions {
  target: PgTarget;
  dualWriteSinceMs?: number;
  auditWindowMs?: number;
  toleranceMs?: number;
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
export function auditPlan(options: AuditPlanOptions) {
  const since = options.dualWriteSinceMs;
  if (since === undefined)
    return { filter: async <R extends AnyRecord>(records: R[], _report: StoreReport) => records };
  const windowStart = since - (options.auditWindowMs ?? 15 * 60_000);
  const tolerance = options.toleranceMs ?? 1000;
  let onTarget: Map<string, number[]> | undefined;
  return {
    async filter<R extends AnyRecord>(records: R[], report: StoreReport): Promise<R[]> {
      const out: R[] = [];
      for (const record of records) {
        if (!isAuditRecord(record) || record.atMs < windowStart) {
          out.push(record);
          continue;
        }
        if (record.atMs > since) {
          report.skipped['mirrored by dual-write'] = (report.skipped['mirrored by dual-write'] ?? 0) + 1;
          continue;
        }
        if (!onTarget) {
          onTarget = new Map();
          for (const entry of await options.target.auditBetween(windowStart - tolerance, since + tolerance)) {
            const key = auditContentId(entry);
            const list = onTarget.get(key) ?? [];
            list.push(entry.atMs);
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
          report.matched += 1;
        } else out.push(record);
      }
      return out;
    },
  };
}
