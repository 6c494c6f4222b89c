/**
 * What a migration prints while it runs and when it ends. On a terminal: one progress bar line,
 * redrawn in place (counts, rate, ETA); otherwise (CI logs, files) a plain line every few
 * seconds and one per store. Hand-written: it is a few lines over the copy's own counts, and
 * must behave the same with and without a TTY.
 */
import type { CopyProgress, CopyReport } from './copy.js';
import { STORE_TITLES, type StoreName } from './records.js';
import type { ValidationReport } from './validate.js';

export interface Output {
  write(text: string): void;
  isTTY?: boolean;
  columns?: number;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

/** A short span (a drift, a tolerance): under a second in milliseconds, not rounded to `0s`. */
function span(ms: number): string {
  return Math.abs(ms) < 1000 ? `${Math.round(ms)} ms` : duration(ms);
}

/** A progress callback for `copy()`; `finish()` ends the bar line. */
export function copyProgress(out: Output, options: { intervalMs?: number; verb?: string } = {}) {
  const interval = options.intervalMs ?? (out.isTTY ? 100 : 5000);
  const verb = options.verb ?? 'copy';
  let last = 0;
  let drawn = false;
  const line = (progress: CopyProgress) => {
    const rate = progress.elapsedMs > 0 ? (progress.totalRead * 1000) / progress.elapsedMs : 0;
    const total = progress.totalEstimate;
    const eta = total !== undefined && rate > 0 ? ((total - progress.totalRead) / rate) * 1000 : Number.NaN;
    const store = STORE_TITLES[progress.store];
    const counts = `${fmt(progress.totalRead)}${total !== undefined ? `/${fmt(total)}` : ''} items`;
    const tail = `${fmt(rate)}/s${Number.isNaN(eta) ? '' : `, ETA ${duration(eta)}`}`;
    if (!out.isTTY) return `${verb}: ${store}: ${counts}, ${tail}\n`;
    const width = 24;
    const done = total ? Math.min(1, progress.totalRead / Math.max(1, total)) : 0;
    const bar = total
      ? `[${'#'.repeat(Math.round(done * width)).padEnd(width, '.')}] ${Math.floor(done * 100)}% `
      : '';
    const text = `${bar}${counts}  ${tail}  ${store}`;
    return `\r${text.slice(0, (out.columns ?? 100) - 1)}\u001b[K`;
  };
  return {
    update(progress: CopyProgress) {
      const now = Date.now();
      if (progress.phase === 'batch' && now - last < interval) return;
      if (!out.isTTY && progress.phase === 'start') return;
      last = now;
      out.write(line(progress));
      drawn = out.isTTY === true;
    },
    finish() {
      if (drawn) out.write('\n');
      drawn = false;
    },
  };
}

/** Rows and columns, aligned: numbers right, text left. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const numeric = head.map((_, i) => rows.every((r) => typeof r[i] === 'number'));
  const render = (r: string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [render(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(render)].join(
    '\n',
  );
}

export function copySummary(report: CopyReport): string {
  const rows = (
    Object.entries(report.stores) as [StoreName, NonNullable<CopyReport['stores'][StoreName]>][]
  ).map(([store, storeReport]) => [
    STORE_TITLES[store],
    storeReport.read,
    storeReport.written,
    storeReport.rewritten + storeReport.removed,
    storeReport.matched,
    Object.values(storeReport.skipped).reduce((a, b) => a + b, 0),
    storeReport.done ? duration(storeReport.durationMs) : 'stopped',
  ]);
  const skippedLines = Object.entries(report.stores).flatMap(([store, r]) =>
    Object.entries(r.skipped)
      .filter(([, n]) => n > 0)
      .map(([why, n]) => `  ${STORE_TITLES[store as StoreName]}: ${fmt(n)} ${why}`),
  );
  const total = Object.values(report.stores).reduce((a, r) => a + r.read, 0);
  return [
    `${report.dryRun ? 'dry run (nothing written): ' : ''}${report.source} -> ${report.target}${report.resumed ? ' (resumed from checkpoint)' : ''}`,
    '',
    table(['store', 'read', 'written', 'rewritten', 'already there', 'skipped', 'time'], rows),
    ...(skippedLines.length ? ['', 'skipped:', ...skippedLines] : []),
    '',
    `${fmt(total)} items in ${duration(report.durationMs)} (${fmt(report.rate)} items/s)` +
      (report.interrupted ? ' — interrupted: run the same command again to resume from the checkpoint' : ''),
  ].join('\n');
}

export function validationSummary(report: ValidationReport): string {
  const rows = (
    Object.entries(report.stores) as [StoreName, NonNullable<ValidationReport['stores'][StoreName]>][]
  ).map(([store, verdict]) => [
    STORE_TITLES[store],
    verdict.sourceCount,
    verdict.targetCount,
    verdict.checked,
    verdict.missing,
    verdict.extra,
    verdict.changed,
    verdict.ttlDrift,
    verdict.ok ? 'ok' : 'MISMATCH',
  ]);
  const details: string[] = [];
  for (const [store, verdict] of Object.entries(report.stores) as [
    StoreName,
    NonNullable<ValidationReport['stores'][StoreName]>,
  ][]) {
    for (const [kind, list] of Object.entries(verdict.examples)) {
      for (const mismatch of list) {
        const what =
          kind === 'ttlDrift'
            ? `${mismatch.field} off by ${span(mismatch.driftMs ?? 0)}`
            : mismatch.field
              ? `field ${mismatch.field}`
              : '';
        details.push(
          `  ${STORE_TITLES[store]}: ${kind === 'ttlDrift' ? 'ttl drift' : kind} ${JSON.stringify(mismatch.id)} ${what}`.trimEnd(),
        );
      }
    }
  }
  return [
    `validate ${report.source} against ${report.target}${report.sample ? ` (sample of ${fmt(report.sample)} per store)` : ''}, times within ${span(report.toleranceMs)}`,
    '',
    table(
      ['store', 'source', 'target', 'checked', 'missing', 'extra', 'changed', 'ttl drift', 'result'],
      rows,
    ),
    ...(details.length ? ['', 'mismatches (first of each kind):', ...details] : []),
    '',
    report.ok ? `OK: source and target agree (${duration(report.durationMs)})` : 'MISMATCH: see above',
  ].join('\n');
}
