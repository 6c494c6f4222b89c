/**
 * The chart: p50 latency (sequential) per operation, one bar per backend and raw driver, on a
 * log-scale axis, with the run's machine, versions and date under the title. Hand-written SVG.
 */
import type { BenchResults } from './results.js';
import { ms } from './table.js';

const COLORS = [
  '#d62728',
  '#1f77b4',
  '#17becf',
  '#9467bd',
  '#7f7f7f',
  '#ff9896',
  '#aec7e8',
  '#9edae5',
  '#2ca02c',
  '#bcbd22',
];

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Decades from below `min` to above `max`: the log axis' ticks. */
export function decades(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const out: number[] = [];
  for (let e = lo; e <= Math.max(hi, lo + 1); e++) out.push(10 ** e);
  return out;
}

export function renderSvg(results: BenchResults): string {
  const rows = results.latency.filter((r) => r.concurrency === 1 && r.p50 > 0);
  const backends = [...new Set(rows.map((r) => r.backend))];
  const ops = [...new Set(rows.map((r) => r.op))];
  const width = 960;
  const left = 150;
  const right = 70;
  const top = 78;
  const bar = 11;
  const gap = 14;
  const legendRows = Math.ceil(backends.length / 4);
  const plotHeight = ops.length * (backends.length * bar + gap);
  const height = top + plotHeight + 40 + legendRows * 18 + 10;
  const ticks =
    rows.length > 0
      ? decades(Math.min(...rows.map((r) => r.p50)), Math.max(...rows.map((r) => r.p50)))
      : [0.01, 1];
  const lo = Math.log10(ticks[0] as number);
  const hi = Math.log10(ticks[ticks.length - 1] as number);
  const x = (value: number) => left + ((Math.log10(value) - lo) / (hi - lo)) * (width - left - right);
  const m = results.meta;
  const v = m.versions;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${left}" y="20" font-size="15" font-weight="bold">Kubently Storage: p50 latency per operation (ms, log scale, sequential)</text>`,
    `<text x="${left}" y="38" fill="#444">${escapeXml(`${m.date.slice(0, 16).replace('T', ' ')} UTC, ${m.mode} run, ${m.machine.cpu}, ${m.machine.cores} cores`)}</text>`,
    `<text x="${left}" y="53" fill="#444">${escapeXml(`node ${v.node}, Redis ${v.redis ?? '?'}, PostgreSQL ${v.postgresql ?? '?'}, ioredis ${v.ioredis}, pg ${v.pg}; ${m.reps} rep(s), medians; ${m.pinned.split(' (')[0]}`)}</text>`,
  ];
  for (const tick of ticks) {
    const tx = x(tick).toFixed(1);
    out.push(`<line x1="${tx}" y1="${top - 6}" x2="${tx}" y2="${top + plotHeight}" stroke="#ddd"/>`);
    out.push(
      `<text x="${tx}" y="${top - 9}" text-anchor="middle" fill="#666">${tick < 1 ? tick.toPrecision(1) : tick} ms</text>`,
    );
  }
  let y = top;
  for (const op of ops) {
    out.push(
      `<text x="${left - 8}" y="${y + (backends.length * bar) / 2 + 4}" text-anchor="end" font-weight="bold">${escapeXml(op)}</text>`,
    );
    backends.forEach((backend, b) => {
      const row = rows.find((r) => r.backend === backend && r.op === op);
      if (row) {
        const w = Math.max(1, x(row.p50) - left);
        out.push(
          `<rect x="${left}" y="${y + b * bar}" width="${w.toFixed(1)}" height="${bar - 2}" fill="${COLORS[b % COLORS.length]}"><title>${escapeXml(`${backend} ${op}: p50 ${ms(row.p50)} ms, p99 ${ms(row.p99)} ms`)}</title></rect>`,
          `<text x="${(left + w + 3).toFixed(1)}" y="${y + b * bar + bar - 3}" font-size="9" fill="#333">${ms(row.p50)}</text>`,
        );
      }
    });
    y += backends.length * bar + gap;
  }
  out.push(`<line x1="${left}" y1="${top - 6}" x2="${left}" y2="${top + plotHeight}" stroke="#888"/>`);
  const legendTop = top + plotHeight + 24;
  backends.forEach((backend, b) => {
    const lx = left + (b % 4) * 190;
    const ly = legendTop + Math.floor(b / 4) * 18;
    out.push(
      `<rect x="${lx}" y="${ly - 9}" width="12" height="10" fill="${COLORS[b % COLORS.length]}"/>`,
      `<text x="${lx + 17}" y="${ly}">${escapeXml(backend)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
