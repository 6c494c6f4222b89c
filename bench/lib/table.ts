/** Markdown tables with padded columns: the same text reads well on a terminal and renders on GitHub. */

export type Align = 'left' | 'right';

export function table(headers: string[], rows: string[][], align: Align[] = []): string {
  const widths = headers.map((h, c) => Math.max(h.length, 3, ...rows.map((r) => (r[c] ?? '').length)));
  const pad = (text: string, c: number) =>
    align[c] === 'right' ? text.padStart(widths[c] as number) : text.padEnd(widths[c] as number);
  const line = (cells: string[]) => `| ${cells.map((cell, c) => pad(cell, c)).join(' | ')} |`;
  const rule = `| ${widths.map((w, c) => (align[c] === 'right' ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(headers), rule, ...rows.map((r) => line(headers.map((_, c) => r[c] ?? '')))].join('\n');
}

/** Milliseconds with three decimals below 10 ms, fewer above; '—' for a missing number. */
export function ms(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '—';
  return value < 10 ? value.toFixed(3) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

/** An integer with thousands separators; '—' for a missing number. */
export function int(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '—';
  return Math.round(value).toLocaleString('en-US');
}

/** A ratio such as `1.04×`; '—' when either side is missing. */
export function ratio(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  return `${value.toFixed(2)}×`;
}

/** Bytes as KB (1 KB = 1000 bytes, as bundle limits are usually stated). */
export function kb(bytes: number): string {
  return `${(bytes / 1000).toFixed(0)} KB`;
}
