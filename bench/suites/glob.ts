/**
 * Resource globs (lib/glob.ts): the time one match takes, for ordinary patterns and for the
 * hostile ones — many stars, on a 255-byte name that almost matches, where a backtracking
 * `.*` regex takes seconds to minutes — and for a token at every issue-time bound. One row times
 * the regex the matcher replaced, on a name short enough to finish, for scale.
 */
import { globMatcher, matchesAny } from '../../lib/glob.js';
import { MAX_GLOB_STARS, MAX_GLOBS_PER_TOKEN, MAX_NAME_BYTES } from '../../lib/limits.js';
import type { Context } from '../lib/context.js';
import { median, quantile } from '../lib/measure.js';
import type { GlobRow } from '../lib/results.js';

/** Matches per timed batch: one match takes well under a microsecond, below the timer's grain. */
const BATCH = 100;
const PREFIX = 'team-a-';
/** The pattern a `team-a-*` token could issue before issue-time bounds existed. */
const HOSTILE_STARS = 12;
const hostile = (stars: number) => `${PREFIX}${'a*'.repeat(stars)}!`;
/** `team-a-aaa…` of `bytes` bytes: every star finds its `a`, the final `!` never comes. */
const almost = (bytes: number) => `${PREFIX}${'a'.repeat(bytes - PREFIX.length)}`;

interface GlobCase {
  case: string;
  patterns: string[];
  name: string;
}

const CASES: GlobCase[] = [
  { case: 'prefix team-a-*, 40-byte name', patterns: ['team-a-*'], name: almost(40) },
  { case: 'exact name, 255 bytes', patterns: [almost(MAX_NAME_BYTES)], name: almost(MAX_NAME_BYTES) },
  {
    case: `hostile: ${HOSTILE_STARS} stars, ${MAX_NAME_BYTES}-byte name (now refused at issue)`,
    patterns: [hostile(HOSTILE_STARS)],
    name: almost(MAX_NAME_BYTES),
  },
  {
    case: `hostile: ${MAX_GLOB_STARS} stars (the bound), ${MAX_NAME_BYTES}-byte name`,
    patterns: [hostile(MAX_GLOB_STARS)],
    name: almost(MAX_NAME_BYTES),
  },
  {
    case: `indexOf worst case: ${MAX_GLOB_STARS} stars, pieces of a…ab, ${MAX_NAME_BYTES} × a`,
    patterns: [`*${Array.from({ length: MAX_GLOB_STARS - 1 }, () => `${'a'.repeat(29)}b`).join('*')}*`],
    name: 'a'.repeat(MAX_NAME_BYTES),
  },
  {
    case: `a token at every bound: ${MAX_GLOBS_PER_TOKEN} patterns × ${MAX_GLOB_STARS} stars, ${MAX_NAME_BYTES}-byte name`,
    patterns: Array.from({ length: MAX_GLOBS_PER_TOKEN }, (_, i) => `${hostile(MAX_GLOB_STARS)}${i}`),
    name: almost(MAX_NAME_BYTES),
  },
];

/** The regex the matcher replaced (`*` → `.*`), for the one comparison row. */
function backtrackingRegex(pattern: string): RegExp {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 's');
}
const REGEX_NAME_BYTES = 30;

export async function globSuite(ctx: Context): Promise<void> {
  const rows: GlobRow[] = [];
  const { reps, ...budget } = ctx.budget;
  for (const c of CASES) {
    const matched = matchesAny(c.patterns, c.name);
    const perMatch: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      for (let i = 0; i < budget.warmup; i++) matchesAny(c.patterns, c.name);
      const stopAt = performance.now() + budget.maxMs;
      for (let batch = 0; batch < budget.iterations / 10 && performance.now() < stopAt; batch++) {
        const t = performance.now();
        for (let i = 0; i < BATCH; i++) matchesAny(c.patterns, c.name);
        perMatch.push((performance.now() - t) / BATCH);
      }
    }
    rows.push(row(c.case, c.patterns, c.name, matched, perMatch, 'lib/glob'));
  }

  // A few single calls: each takes milliseconds (seconds a few bytes further on).
  const pattern = hostile(HOSTILE_STARS);
  const regex = backtrackingRegex(pattern);
  const name = almost(REGEX_NAME_BYTES);
  const times: number[] = [];
  let matched = false;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    matched = regex.test(name);
    times.push(performance.now() - t);
  }
  const lib = globMatcher(pattern)(name);
  if (lib !== matched) throw new Error('lib/glob and the regex disagree on the comparison row');
  rows.push(
    row(
      `for scale, the replaced .* regex: ${HOSTILE_STARS} stars, ${REGEX_NAME_BYTES}-byte name`,
      [pattern],
      name,
      matched,
      times,
      'regex (before)',
    ),
  );
  ctx.results.glob = rows;
  for (const r of rows) ctx.log(`  ${r.case}: p50 ${r.p50.toFixed(5)} ms, p99 ${r.p99.toFixed(5)} ms`);
}

function row(
  name: string,
  patterns: string[],
  subject: string,
  matched: boolean,
  perMatch: number[],
  matcher: GlobRow['matcher'],
): GlobRow {
  const sorted = [...perMatch].sort((a, b) => a - b);
  return {
    case: name,
    matcher,
    patterns: patterns.length,
    stars: Math.max(...patterns.map((p) => p.split('*').length - 1)),
    nameBytes: Buffer.byteLength(subject),
    matched,
    p50: median(sorted),
    p99: quantile(sorted, 0.99),
    n: matcher === 'lib/glob' ? sorted.length * BATCH : sorted.length,
  };
}
