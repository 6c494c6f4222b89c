/**
 * Glob patterns over names: `*` matches any run of characters (including none); every other
 * character matches itself. Used for token resources and per-channel settings.
 *
 * Matching never backtracks: the pattern is split on `*`, its first and last pieces are anchored
 * at the two ends of the name, and each piece between is found with `indexOf` left to right, the
 * leftmost occurrence always being the right one to take (whatever a later piece needs, an earlier
 * occurrence leaves more room for). That is O(name × pattern) for any pattern, where a `.*`
 * regex is exponential in the number of stars on a name that almost matches. Limits on what a
 * token may carry (length, stars, count) are checked when it is issued (storage/validate.ts).
 */

/** A compiled pattern: the text before the first `*`, the pieces between stars, the text after the last. */
interface Compiled {
  head: string;
  middle: string[];
  tail: string;
  /** The fewest characters a name needs: head, middle pieces and tail together. */
  minLength: number;
}

// Compiled patterns are reused across calls (token globs are matched on every request and
// frame, and over every item of a filtered list); bounded so hostile patterns cannot grow it.
const CACHE_SIZE = 512;
const cache = new Map<string, (name: string) => boolean>();

export function globMatcher(pattern: string): (name: string) => boolean {
  const cached = cache.get(pattern);
  if (cached) return cached;
  const matcher = compile(pattern);
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  cache.set(pattern, matcher);
  return matcher;
}

export function matchesAny(patterns: readonly string[], name: string): boolean {
  return patterns.some((pattern) => globMatcher(pattern)(name));
}

function compile(pattern: string): (name: string) => boolean {
  if (pattern === '*') return () => true;
  if (!pattern.includes('*')) return (name) => name === pattern;
  const pieces = pattern.split('*');
  const head = pieces[0]!;
  const tail = pieces[pieces.length - 1]!;
  // Empty pieces (`**`, a leading or trailing `*`) constrain nothing.
  const middle = pieces.slice(1, -1).filter((piece) => piece !== '');
  const minLength = head.length + tail.length + middle.reduce((sum, piece) => sum + piece.length, 0);
  return (name) => matches({ head, middle, tail, minLength }, name);
}

function matches({ head, middle, tail, minLength }: Compiled, name: string): boolean {
  if (name.length < minLength || !name.startsWith(head) || !name.endsWith(tail)) return false;
  // Middle pieces must fit between the head and the tail, without overlapping either.
  const end = name.length - tail.length;
  let at = head.length;
  for (const piece of middle) {
    const found = name.indexOf(piece, at);
    if (found < 0 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}
