/**
 * Glob patterns over names: `*` matches any run of characters (including none); every other
 * character matches itself. Used for token resources and per-channel settings.
 */
export function globMatcher(pattern: string): (name: string) => boolean {
  if (pattern === '*') return () => true;
  if (!pattern.includes('*')) return (name) => name === pattern;
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  const regex = new RegExp(`^${source}$`, 's');
  return (name) => regex.test(name);
}

export function matchesAny(patterns: readonly string[], name: string): boolean {
  return patterns.some((pattern) => globMatcher(pattern)(name));
}
