/** What Powertools metrics write to stdout, collected for tests. */
import { vi } from 'vitest';

/** One Embedded Metric Format document. */
export interface Emf {
  _aws: {
    CloudWatchMetrics: {
      Namespace: string;
      Dimensions: string[][];
      Metrics: { Name: string; Unit: string }[];
    }[];
  };
  [key: string]: unknown;
}

/**
 * Collects the EMF documents written to stdout until `stop()`, which answers them in order;
 * other output passes through. Powertools writes metrics only when they are enabled and not in
 * dev mode (`POWERTOOLS_METRICS_DISABLED=false`, `POWERTOOLS_DEV` empty).
 */
export function captureEmf(): { stop(): Emf[] } {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation(((
    chunk: string | Uint8Array,
    ...rest: unknown[]
  ) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (!text.includes('"_aws"')) return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
    lines.push(...text.split('\n').filter((line) => line.includes('"_aws"')));
    return true;
  }) as typeof process.stdout.write);
  return {
    stop() {
      spy.mockRestore();
      return lines.map((line) => JSON.parse(line) as Emf);
    },
  };
}
