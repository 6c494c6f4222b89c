/** The benchmark's own arithmetic and rendering: percentiles, medians, target verdicts, tables, the chart. */
import { describe, expect, it } from 'vitest';
import { combine, median, quantile, sample, sampleInterleaved } from '../../bench/lib/measure.js';
import { globTable } from '../../bench/lib/report.js';
import type { BenchResults, LatencyRow } from '../../bench/lib/results.js';
import { decades, escapeXml, renderSvg } from '../../bench/lib/svg.js';
import { table } from '../../bench/lib/table.js';
import { evaluateTargets, overhead, pairedRatio } from '../../bench/lib/targets.js';

const row = (backend: string, op: string, p50: number, concurrency = 1): LatencyRow => ({
  backend,
  op,
  concurrency,
  p50,
  p99: p50 * 3,
  opsPerSec: 1000 / p50,
  n: 100,
  reps: [{ p50, p99: p50 * 3, opsPerSec: 1000 / p50, n: 100 }],
});

function results(latency: LatencyRow[]): BenchResults {
  return {
    meta: {
      date: '2026-01-01T00:00:00.000Z',
      mode: 'quick',
      pinned: 'not pinned (--no-pin)',
      reps: 1,
      budget: { warmup: 1, iterations: 1, maxMs: 1 },
      machine: { cpu: 'cpu <x>', cores: 2, memoryGiB: 1, os: 'Linux', load: [0, 0, 0] },
      versions: { node: 'v20', ioredis: '5', pg: '8' },
      durationSeconds: 1,
      skipped: [],
      notes: [],
    },
    latency,
    peers: {
      kv: [],
      queue: [
        {
          system: 'kubently (postgresql, batches of 50)',
          consumers: 8,
          jobs: 10,
          jobsPerSec: 300,
          reps: [300],
        },
        { system: 'pg-boss (batches of 50)', consumers: 8, jobs: 10, jobsPerSec: 100, reps: [100] },
      ],
    },
    scale: { keys: [], queue: [], sweep: [] },
    lambda: undefined,
    targets: [],
  };
}

describe('bench statistics', () => {
  it('quantile is nearest-rank over sorted samples', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantile(sorted, 0.5)).toBe(50);
    expect(quantile(sorted, 0.99)).toBe(99);
    expect(quantile(sorted, 1)).toBe(100);
    expect(quantile([7], 0.99)).toBe(7);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it('median of odd and even counts, ignoring NaN', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([Number.NaN, 5])).toBe(5);
  });

  it('combine reports the medians of the repetitions and keeps them', () => {
    const m = combine([
      { p50: 1, p99: 9, opsPerSec: 100, n: 10 },
      { p50: 3, p99: 5, opsPerSec: 300, n: 10 },
      { p50: 2, p99: 7, opsPerSec: 200, n: 10 },
    ]);
    expect(m).toMatchObject({ p50: 2, p99: 7, opsPerSec: 200, n: 30 });
    expect(m.reps).toHaveLength(3);
  });

  it('sample calls the operation warmup + iterations times and gives each call a distinct number', async () => {
    const seen: number[] = [];
    const s = await sample(async (i) => void seen.push(i), { warmup: 5, iterations: 50, maxMs: 10_000 }, 4);
    expect(s.n).toBe(50);
    expect(seen).toHaveLength(55);
    expect(new Set(seen).size).toBe(55);
  });

  it('sampleInterleaved alternates the operations and times each one separately', async () => {
    const order: string[] = [];
    const [a, b] = await sampleInterleaved(
      [async () => void order.push('a'), async () => void order.push('b')],
      { warmup: 2, iterations: 20, maxMs: 10_000 },
      1,
    );
    expect(a!.n).toBe(20);
    expect(b!.n).toBe(20);
    expect(order.slice(0, 6)).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
    expect(order.filter((x) => x === 'a')).toHaveLength(22);
  });
});

describe('bench targets', () => {
  it('compares the library with its raw driver and judges each target', () => {
    const r = results([
      row('redis', 'kv.get', 0.105),
      row('ioredis (raw)', 'kv.get', 0.1),
      row('postgresql (pg)', 'kv.get', 0.3),
      row('pg (raw)', 'kv.get', 0.2),
    ]);
    expect(overhead(r, 'redis', 'kv.get')).toBeCloseTo(1.05);
    const targets = evaluateTargets(r);
    const byName = (name: string) => targets.find((t) => t.name === name)!;
    expect(byName('library vs raw driver, redis').met).toBe(true);
    expect(byName('library vs raw driver, postgresql (pg)')).toMatchObject({
      met: false,
      note: 'over: kv.get',
    });
    expect(byName('library vs raw driver, postgresql (neon)').met).toBeUndefined();
    expect(byName('PostgreSQL (pg) p50 kv.get').met).toBe(false);
    expect(byName('PostgreSQL queue vs pg-boss')).toMatchObject({ met: true });
    expect(byName('warm handler overhead').met).toBeUndefined();
  });
});

describe('paired ratios', () => {
  it('take the median of the per-repetition ratios, so one odd repetition does not decide', () => {
    const a = {
      ...row('lib', 'kv.get', 0.114),
      reps: [0.119, 0.036, 0.114].map((p50) => ({ p50, p99: 1, opsPerSec: 1, n: 1 })),
    };
    const b = {
      ...row('raw', 'kv.get', 0.045),
      reps: [0.108, 0.029, 0.045].map((p50) => ({ p50, p99: 1, opsPerSec: 1, n: 1 })),
    };
    expect(pairedRatio(a, b, 'p50')).toBeCloseTo(0.036 / 0.029);
  });
});

describe('bench rendering', () => {
  it('tables pad every column to its widest cell and right-align numbers', () => {
    const text = table(
      ['name', 'ms'],
      [
        ['a', '1.5'],
        ['longer', '10.25'],
      ],
      ['left', 'right'],
    );
    expect(text.split('\n')).toEqual([
      '| name   |    ms |',
      '| ------ | ----: |',
      '| a      |   1.5 |',
      '| longer | 10.25 |',
    ]);
  });

  it('the log axis spans whole decades around the data', () => {
    expect(decades(0.015, 1.9)).toEqual([0.01, 0.1, 1, 10]);
    expect(decades(0.2, 0.3)).toEqual([0.1, 1]);
  });

  it('the chart has one bar per measured sequential row, and escapes text', () => {
    const svg = renderSvg(
      results([
        row('redis', 'kv.get', 0.1),
        row('redis', 'kv.set', 0.2),
        row('redis', 'kv.get', 0.5, 8),
        row('memory', 'kv.get', 0.001),
      ]),
    );
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(
      svg.match(/<rect x="\d+" y="[\d.]+" width="[\d.]+" height="\d+" fill="#[0-9a-f]{6}"><title>/g),
    ).toHaveLength(3);
    expect(svg).toContain('cpu &#60;x&#62;');
    expect(escapeXml('a&b"')).toBe('a&#38;b&#34;');
  });
});

describe('resource glob rows', () => {
  const glob = (p99: number, matcher: 'lib/glob' | 'regex (before)' = 'lib/glob') => ({
    case: matcher === 'lib/glob' ? 'hostile: 12 stars, 255-byte name' : 'for scale, the replaced .* regex',
    matcher,
    patterns: 1,
    stars: 12,
    nameBytes: 255,
    matched: false,
    p50: p99 / 2,
    p99,
    n: 100,
  });
  const target = (r: BenchResults) =>
    evaluateTargets(r).find((t) => t.name === 'resource glob, hostile pattern on a 255-byte name');

  it('judge the hostile rows of lib/glob only, and show in the report', () => {
    expect(target(results([]))?.met).toBeUndefined();
    expect(target({ ...results([]), glob: [glob(0.0005), glob(30, 'regex (before)')] })).toMatchObject({
      met: true,
      actual: '0.00050 ms',
    });
    expect(target({ ...results([]), glob: [glob(0.5)] })?.met).toBe(false);
    const report = globTable({ ...results([]), glob: [glob(0.0005)] });
    expect(report).toContain('| hostile: 12 stars, 255-byte name | lib/glob');
    expect(report).toContain('0.00050');
  });
});
