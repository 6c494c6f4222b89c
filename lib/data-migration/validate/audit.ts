/**
 * Audit entries get new ids on the target, so they are matched by content: one to one, each
 * source entry with a target entry of the same content within the tolerance.
 */
import { type AuditRecord, auditContentId } from '../records.js';
import type { StoreTally } from './tally.js';

/** Entries by content, each list in time order. */
function byContent(entries: AuditRecord[]): Map<string, AuditRecord[]> {
  const grouped = new Map<string, AuditRecord[]>();
  for (const entry of entries) {
    const key = auditContentId(entry);
    const list = grouped.get(key) ?? [];
    list.push(entry);
    grouped.set(key, list);
  }
  for (const list of grouped.values()) list.sort((a, b) => a.atMs - b.atMs);
  return grouped;
}

/** `sample` entries chosen at random (`random` in [0, 1)), in time order. */
export function sampleEntries(entries: AuditRecord[], sample: number, random: () => number): AuditRecord[] {
  const shuffled = [...entries];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  return shuffled.slice(0, sample).sort((a, b) => a.atMs - b.atMs);
}

/**
 * Matches `compared` source entries with the target's. Per content, both sides in time order:
 * each source entry takes the earliest unmatched target entry within the tolerance (for
 * intervals of one width this pairs as many as any matching can); what is left pairs up as time
 * drift, then missing, or (when `countExtra`: every source entry was compared) extra.
 */
export function matchAudit(
  compared: AuditRecord[],
  targetEntries: AuditRecord[],
  toleranceMs: number,
  countExtra: boolean,
  tally: StoreTally,
): void {
  const targets = byContent(targetEntries);
  const unmatched: AuditRecord[] = [];
  for (const [key, sources] of byContent(compared)) {
    const candidates = targets.get(key) ?? [];
    const passed: AuditRecord[] = [];
    let next = 0;
    for (const entry of sources) {
      while (next < candidates.length && candidates[next]!.atMs < entry.atMs - toleranceMs)
        passed.push(candidates[next++]!);
      if (next < candidates.length && candidates[next]!.atMs <= entry.atMs + toleranceMs) {
        next++;
        tally.matched();
      } else {
        tally.result.checked += 1;
        unmatched.push(entry);
      }
    }
    targets.set(key, [...passed, ...candidates.slice(next)]);
  }
  for (const entry of unmatched) {
    const left = targets.get(auditContentId(entry));
    if (left && left.length > 0) {
      // The nearest in time of what is left.
      let best = 0;
      for (let i = 1; i < left.length; i++)
        if (Math.abs(left[i]!.atMs - entry.atMs) < Math.abs(left[best]!.atMs - entry.atMs)) best = i;
      const [nearest] = left.splice(best, 1);
      tally.mismatch('ttlDrift', {
        id: entry.sourceId,
        field: 'atMs',
        driftMs: Math.abs(nearest!.atMs - entry.atMs),
      });
    } else tally.mismatch('missing', { id: `${entry.sourceId} ${entry.identity} ${entry.action}` });
  }
  if (countExtra)
    for (const left of targets.values())
      for (const entry of left)
        tally.mismatch('extra', { id: `${entry.sourceId} ${entry.identity} ${entry.action}` });
}
