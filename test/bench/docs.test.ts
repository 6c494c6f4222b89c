/**
 * docs/benchmarks.md holds no hand-copied number: its block between the markers is what
 * `npm run bench:docs` renders from bench/results, like openapi.yaml from the routes table.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BEGIN,
  BENCHMARKS_DOC,
  END,
  RESULTS_DIR,
  renderBlock,
  replaceBlock,
} from '../../bench/render-docs.js';

describe('docs/benchmarks.md', () => {
  it('is what `npm run bench:docs` renders from bench/results (run it after a benchmark run)', () => {
    const page = readFileSync(BENCHMARKS_DOC, 'utf8');
    expect(page).toContain(BEGIN);
    expect(page).toContain(END);
    expect(page).toBe(replaceBlock(page, renderBlock()));
  });

  it('changes when the results change, and keeps the text around the markers', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kst-bench-docs-'));
    try {
      const latest = JSON.parse(readFileSync(join(RESULTS_DIR, 'latest.json'), 'utf8'));
      latest.latency[0].p50 = 123.456;
      writeFileSync(join(dir, 'latest.json'), JSON.stringify(latest));
      const page = readFileSync(BENCHMARKS_DOC, 'utf8');
      const rerendered = replaceBlock(page, renderBlock(dir));
      expect(rerendered).not.toBe(page);
      expect(rerendered).toContain('123');
      expect(rerendered.slice(0, page.indexOf(BEGIN))).toBe(page.slice(0, page.indexOf(BEGIN)));
      expect(rerendered.slice(rerendered.indexOf(END))).toBe(page.slice(page.indexOf(END)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
