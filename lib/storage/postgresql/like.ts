/**
 * Resource globs in SQL: a glob (`*` matches any run of characters, every other character
 * itself; lib/glob.ts) as a LIKE pattern with the default escape `\`, so a filter by the
 * caller's globs runs in the query rather than over every row in the function.
 */
export function likePattern(glob: string): string {
  return glob.replace(/[\\%_]/g, '\\$&').replaceAll('*', '%');
}

export function likePatterns(globs: readonly string[]): string[] {
  return globs.map(likePattern);
}
