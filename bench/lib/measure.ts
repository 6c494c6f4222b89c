/**
 * Timing: an operation run sequentially or by N concurrent callers, each call timed on its own,
 * summarised as p50 / p99 latency and ops/s; repeated, and the medians of the repetitions kept.
 */

/** How long one measurement runs: after `warmup` calls, up to `iterations` calls or `maxMs`, whichever ends first. */
export interface Budget {
  warmup: number;
  iterations: number;
  maxMs: number;
  /** Repetitions of the whole measurement; the reported numbers are their medians. */
  reps: number;
}

export interface Sample {
  /** Latency of one call, ms. */
  p50: number;
  p99: number;
  /** Completed calls per second of wall time (all callers together). */
  opsPerSec: number;
  /** Calls timed. */
  n: number;
}

export interface Measured extends Sample {
  /** Each repetition's numbers, in order: the spread between them is the noise. */
  reps: Sample[];
}

/** The `q` quantile (0–1) of ascending `sorted`, nearest rank; NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] as number;
}

/** The median of `values` (the mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The medians of each field over `samples`, with the samples kept. */
export function combine(samples: Sample[]): Measured {
  return {
    p50: median(samples.map((s) => s.p50)),
    p99: median(samples.map((s) => s.p99)),
    opsPerSec: median(samples.map((s) => s.opsPerSec)),
    n: samples.reduce((sum, s) => sum + s.n, 0),
    reps: samples,
  };
}

/** Largest over smallest p50 of the repetitions (1 = no spread). */
export function spread(m: Measured): number {
  const p50s = m.reps.map((r) => r.p50).filter((v) => v > 0);
  return p50s.length < 2 ? 1 : Math.max(...p50s) / Math.min(...p50s);
}

/** Runs `fn` by `concurrency` callers for one budget and times every call. `fn(i)` gets a call number unique within the run. */
export async function sample(
  fn: (i: number) => Promise<unknown>,
  budget: Omit<Budget, 'reps'>,
  concurrency = 1,
): Promise<Sample> {
  let next = 0;
  const warm = async () => {
    while (next < budget.warmup) await fn(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, warm));
  const latencies = new Float64Array(budget.iterations);
  let count = 0;
  const started = performance.now();
  const stopAt = started + budget.maxMs;
  const caller = async () => {
    while (count < budget.iterations && performance.now() < stopAt) {
      const slot = count++;
      const t = performance.now();
      await fn(next++);
      latencies[slot] = performance.now() - t;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  const elapsed = performance.now() - started;
  const timed = latencies.subarray(0, count).sort();
  return {
    p50: quantile(timed, 0.5),
    p99: quantile(timed, 0.99),
    opsPerSec: (count / elapsed) * 1000,
    n: count,
  };
}

/**
 * Several operations timed together: each caller runs them in rotation (a, b, a, b, …), so the
 * load elsewhere on the machine, which changes from second to second, falls on all of them
 * alike, which makes their ratio trustworthy where separate runs a second apart are not.
 * One Sample per operation; ops/s is callers / mean latency (what that operation alone would
 * sustain with `concurrency` callers), since the wall time is shared.
 */
export async function sampleInterleaved(
  fns: ((i: number) => Promise<unknown>)[],
  budget: Omit<Budget, 'reps'>,
  concurrency = 1,
): Promise<Sample[]> {
  const k = fns.length;
  if (k === 1) return [await sample(fns[0]!, budget, concurrency)];
  let next = 0;
  let warm = 0;
  const warmup = async () => {
    while (warm < budget.warmup * k) {
      const call = warm++;
      await fns[call % k]!(next++);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, warmup));
  const latencies = fns.map(() => new Float64Array(budget.iterations));
  const counts = fns.map(() => 0);
  let total = 0;
  const stopAt = performance.now() + budget.maxMs * k;
  const caller = async () => {
    while (total < budget.iterations * k && performance.now() < stopAt) {
      const which = total++ % k;
      const slot = counts[which]!++;
      const t = performance.now();
      await fns[which]!(next++);
      latencies[which]![slot] = performance.now() - t;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  return fns.map((_, w) => {
    const timed = latencies[w]!.subarray(0, counts[w]).sort();
    const mean = timed.reduce((sum, v) => sum + v, 0) / timed.length;
    return {
      p50: quantile(timed, 0.5),
      p99: quantile(timed, 0.99),
      opsPerSec: (concurrency * 1000) / mean,
      n: timed.length,
    };
  });
}

/** `sample` repeated `budget.reps` times; medians reported. */
export async function measure(
  fn: (i: number) => Promise<unknown>,
  budget: Budget,
  concurrency = 1,
): Promise<Measured> {
  const samples: Sample[] = [];
  for (let r = 0; r < budget.reps; r++) samples.push(await sample(fn, budget, concurrency));
  return combine(samples);
}

/** Milliseconds `fn` takes, with its result. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await fn();
  return { ms: performance.now() - t, value };
}
