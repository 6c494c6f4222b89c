/**
 * Resource globs (lib/glob.ts): `*` matches any run of characters, everything else itself, in
 * time linear in name × pattern whatever the pattern. A property test holds the matcher to a
 * reference regex matcher on small random inputs, where backtracking costs nothing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { globMatcher, matchesAny } from '../../lib/glob.js';
import { MAX_NAME_BYTES } from '../../lib/limits.js';

/** The textbook definition, as a regex: exponential on hostile input, exact on small input. */
function referenceMatch(pattern: string, name: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 's').test(name);
}

/** The pattern that made a `.*` regex take seconds: a token restricted to `team-a-*` could issue it. */
const HOSTILE = `team-a-${'a*'.repeat(12)}!`;

describe('globMatcher', () => {
  it.each([
    ['*', '', true],
    ['*', 'anything/at all', true],
    ['exact', 'exact', true],
    ['exact', 'exactly', false],
    ['team-a-*', 'team-a-', true],
    ['team-a-*', 'team-a-x/y', true],
    ['team-a-*', 'team-b-x', false],
    ['*-logs', 'prod-logs', true],
    ['*-logs', 'prod-logs-old', false],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'a-b-b-c', true],
    ['a*b*c', 'acb', false],
    ['a**c', 'ac', true],
    ['a*a', 'a', false],
    ['ab*ba', 'aba', false],
    ['ab*ba', 'abba', true],
    ['*a*', 'bab', true],
    ['*a*', 'bbb', false],
    ['a.b', 'axb', false],
    ['a.b', 'a.b', true],
    ['x+(y)?[z]$^|\\', 'x+(y)?[z]$^|\\', true],
    ['x+*', 'xxx', false],
    ['*', 'line\nbreak', true],
    ['a*z', 'a\nz', true],
    ['caf\u00e9-*', 'caf\u00e9-\u{1F680}', true],
  ])('%j matches %j: %s', (pattern, name, expected) => {
    expect(globMatcher(pattern)(name)).toBe(expected);
    expect(referenceMatch(pattern, name)).toBe(expected);
  });

  it(`the hostile pattern on a ${MAX_NAME_BYTES}-byte name: no match, and a match when the name fits`, () => {
    const almost = `team-a-${'a'.repeat(MAX_NAME_BYTES - 'team-a-'.length)}`;
    expect(Buffer.byteLength(almost)).toBe(MAX_NAME_BYTES);
    // A `.*` regex backtracks through ~C(248, 12) ways to place the stars here: this would not end.
    expect(globMatcher(HOSTILE)(almost)).toBe(false);
    const fits = `${almost.slice(0, -1)}!`;
    expect(globMatcher(HOSTILE)(fits)).toBe(true);
    expect(matchesAny(['other-*', HOSTILE], fits)).toBe(true);
    expect(matchesAny(['other-*', HOSTILE], almost)).toBe(false);
  });

  it('agrees with the reference regex matcher on random small patterns and names', () => {
    const char = fc.constantFrom('a', 'b', '.', '*', '\n');
    const nameChar = fc.constantFrom('a', 'b', '.', '*', '\n');
    fc.assert(
      fc.property(
        fc.array(char, { maxLength: 10 }).map((chars) => chars.join('')),
        fc.array(nameChar, { maxLength: 14 }).map((chars) => chars.join('')),
        (pattern, name) => globMatcher(pattern)(name) === referenceMatch(pattern, name),
      ),
      { numRuns: 5000 },
    );
  });

  it('matches every name built from the pattern by filling its stars', () => {
    const piece = fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 4 }).map((chars) => chars.join(''));
    fc.assert(
      fc.property(
        fc.array(piece, { minLength: 1, maxLength: 6 }),
        fc.array(piece, { maxLength: 6 }),
        (pieces, fills) => {
          const pattern = pieces.join('*');
          const name = pieces.map((p, i) => (i === 0 ? p : `${fills[i - 1] ?? ''}${p}`)).join('');
          return globMatcher(pattern)(name) && referenceMatch(pattern, name);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('the same matcher serves a pattern again; thousands of distinct patterns still match right', () => {
    expect(globMatcher('cached-*')).toBe(globMatcher('cached-*'));
    for (let i = 0; i < 3000; i++) {
      expect(globMatcher(`p${i}-*`)(`p${i}-x`)).toBe(true);
      expect(globMatcher(`p${i}-*`)(`p${i + 1}-x`)).toBe(false);
    }
  });
});
