/**
 * `npm run bench:docs`: renders bench/results/latest.json (and, when that full run has no
 * data-migration or cold-request numbers, bench/results/only-migrate.json or
 * bench/results/only-cold-request.json; and bench/results/delivery-cost.json, `npm run
 * bench:delivery`'s idle executors) into docs/benchmarks.md, between the
 * markers below; the text around them is written by hand. A full run (`npm run bench`) and a
 * run of the migrate or cold-request suite alone call it too. `npm run bench:docs -- --check` exits 1 when the
 * page is out of date; test/bench/docs.test.ts fails then as well.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DELIVERY_COST_FILE, type DeliveryCostResults, renderDeliveryCost } from './lib/delivery-cost.js';
import { renderBenchmarksBlock } from './lib/docs.js';
import type { BenchResults } from './lib/results.js';

const root = fileURLToPath(new URL('..', import.meta.url));
export const BENCHMARKS_DOC = join(root, 'docs', 'benchmarks.md');
export const RESULTS_DIR = join(root, 'bench', 'results');

export const BEGIN =
  '<!-- bench:begin — rendered from bench/results by `npm run bench:docs`; edit the text outside these markers -->';
export const END = '<!-- bench:end -->';

/** The rendered block (markers included) for the results files in `dir`. */
export function renderBlock(dir = RESULTS_DIR): string {
  const file = (name: string) => join(dir, name);
  const read = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as BenchResults;
  const latest = read(file('latest.json'));
  const migrationFile = file('only-migrate.json');
  const migration = !latest.migrate && existsSync(migrationFile) ? read(migrationFile) : undefined;
  const coldFile = file('only-cold-request.json');
  const cold = !latest.coldRequest && existsSync(coldFile) ? read(coldFile) : undefined;
  const shown = (path: string) => relative(root, path);
  const body = renderBenchmarksBlock(
    latest,
    { results: shown(file('latest.json')), migration: shown(migrationFile), coldRequest: shown(coldFile) },
    migration,
    cold,
  );
  const deliveryFile = file(DELIVERY_COST_FILE);
  const delivery = existsSync(deliveryFile)
    ? renderDeliveryCost(
        JSON.parse(readFileSync(deliveryFile, 'utf8')) as DeliveryCostResults,
        shown(deliveryFile),
      )
    : 'Not measured: `npm run bench:delivery` measures it.';
  const block = `${BEGIN}\n\n${body}\n\n#### Queue delivery: long poll vs push\n\n${delivery}\n\n${END}`;
  // Sections that open with their own blank line (a full run's cold-request and migration
  // parts) would leave two in a row, which the Markdown formatter removes: one is written.
  return block.replace(/\n{3,}/g, '\n\n');
}

/** `page` with its block replaced by `block`; throws when the markers are missing. */
export function replaceBlock(page: string, block: string): string {
  const begin = page.indexOf(BEGIN);
  const end = page.indexOf(END);
  if (begin < 0 || end < begin)
    throw new Error(`docs/benchmarks.md: the markers ${BEGIN} … ${END} are missing`);
  return `${page.slice(0, begin)}${block}${page.slice(end + END.length)}`;
}

/** Writes the block into docs/benchmarks.md; answers whether the page changed. */
export function updateBenchmarksDoc(doc = BENCHMARKS_DOC, dir = RESULTS_DIR): boolean {
  const page = readFileSync(doc, 'utf8');
  const next = replaceBlock(page, renderBlock(dir));
  if (next === page) return false;
  writeFileSync(doc, next);
  return true;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--check')) {
    const page = readFileSync(BENCHMARKS_DOC, 'utf8');
    if (replaceBlock(page, renderBlock()) !== page) {
      console.error('docs/benchmarks.md is out of date with bench/results: run `npm run bench:docs`');
      process.exit(1);
    }
    console.log('docs/benchmarks.md is up to date');
  } else {
    const changed = updateBenchmarksDoc();
    console.log(changed ? `wrote ${relative(root, BENCHMARKS_DOC)}` : 'docs/benchmarks.md was up to date');
  }
}
