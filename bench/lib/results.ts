/** The shape of `bench/results/latest.json`: everything one run measured, and how. */
import type { Measured } from './measure.js';

/** One operation on one backend (or a raw driver, or a peer library) at one concurrency. */
export interface LatencyRow extends Measured {
  /** `redis`, `postgresql (pg)`, …, `ioredis (raw)`, `@keyv/redis`. */
  backend: string;
  /** The matrix's operation name: `kv.get`, `queue pop`, … */
  op: string;
  concurrency: number;
  /** PostgreSQL rows: statements sent per call, counted at the client (the matrix's counter). */
  statementsPerCall?: number;
  /** PostgreSQL rows: commits per call (a statement outside a transaction, or a transaction, is one). */
  commitsPerCall?: number;
  /** PostgreSQL rows: of those commits, the ones that do not wait for the disk (`synchronous_commit` off). */
  asyncCommitsPerCall?: number;
}

/** Jobs sent and processed by a queue system in one timed run. */
export interface ThroughputRow {
  /** `kubently (redis)`, `BullMQ`, `pg-boss`, … */
  system: string;
  consumers: number;
  jobs: number;
  /** Median over repetitions. */
  jobsPerSec: number;
  reps: number[];
}

export interface ScaleRow {
  backend: string;
  keys: number;
  op: string;
  p50: number;
  p99: number;
  /** Seconds spent loading the keys up to this size (not part of the measured latency). */
  setupSeconds: number;
}

export interface SweepResult {
  backend: string;
  rows: number;
  /** Consecutive `sweep()` calls it took (one removes at most 100 batches per table). */
  sweeps: number;
  /** Seconds the sweep took, and rows removed per second. */
  seconds: number;
  rowsPerSec: number;
  /** Seconds spent inserting the expired rows (not measured). */
  setupSeconds: number;
  /** kv.get p50 / p99 on live keys with nothing else running, and while the sweep runs. */
  idle: { p50: number; p99: number };
  during: { p50: number; p99: number };
}

export interface FunctionRow {
  /** The configuration the package was built for (`memory`, `redis`, …; `as packaged` for given zips). */
  package: string;
  name: string;
  /** The handler's .mjs in the zip (source map excluded). */
  bundleBytes: number;
  zipBytes: number;
  /** Median ms for `import()` of the handler in a fresh node process (module load + top-level code). */
  coldImportMs: number;
  /** The same without `--enable-source-maps` (serverless.yml sets it in NODE_OPTIONS). */
  coldImportNoMapsMs: number;
  /** Median ms from spawning `node` to the handler being loaded (process start included). */
  coldProcessMs: number;
}

/**
 * The first request of a cold container (bench/lib/cold-request.mjs): medians over fresh `node`
 * processes, each importing the packaged handler and invoking it once against the real server.
 */
export interface ColdRequestRow {
  /** The package's configuration: `postgresql (pg)`, `postgresql (neon)` (through the local WebSocket proxy), `redis`. */
  package: string;
  /** `kv` (PUT /kv/{key}), `publish` (POST /channels/{channel}/messages), `ws connect` ($connect). */
  function: string;
  runs: number;
  /** `import()` of the bundled handler. */
  importMs: number;
  /** Handler called → its first socket created (middleware, configuration, storage built). */
  beforeConnectMs: number;
  /** First socket created → first query bytes written (TCP, WebSocket upgrade, startup, ready check). */
  connectMs: number;
  /** First query bytes written → the handler's response. */
  firstQueryMs: number;
  /** Handler called → response (the three parts above). */
  requestMs: number;
  /** import + request, median of the per-run sums. */
  totalMs: number;
  /** Process start → response (Node's own start included). */
  processMs: number;
}

export interface WarmHandler {
  /** The route invoked and the backend behind it. */
  route: string;
  backend: string;
  /** The bundled handler invoked in-process with an API Gateway event. */
  handler: { p50: number; p99: number };
  /** The same store operation called on the library directly. */
  store: { p50: number; p99: number };
  /** handler p50 − store p50. */
  overheadP50: number;
}

/** One way of moving the Redis data into PostgreSQL, timed over the whole run (repetitions kept). */
export interface MigrateRow {
  /** `copy`, `copy (verify: false)`, `raw kv (ioredis → pg)`, `validate`. */
  run: string;
  /** Items moved (or compared) in one repetition. */
  items: number;
  /** Median over repetitions, and each repetition's. */
  itemsPerSec: number;
  reps: number[];
  /** Per store: median items/s over repetitions (the copy's and validate's own per-store timing). */
  stores: Partial<Record<string, number>>;
}

export interface MigrateResult {
  /** Items per store in the Redis source, as the copy read them. */
  source: Record<string, number>;
  /** Seconds spent filling Redis through the library (not measured). */
  populateSeconds: number;
  rows: MigrateRow[];
  /** The copy's kv items/s over the raw baseline's, median of the per-repetition ratios. */
  kvVsRaw: { verify: number; noVerify: number };
  /** validate found every store equal after the verified copy, in every repetition. */
  validated: boolean;
}

/** One resource-glob match (lib/glob.ts), timed in batches: ms per match. */
export interface GlobRow {
  case: string;
  /** `lib/glob`, or the backtracking regex it replaced (one comparison row). */
  matcher: 'lib/glob' | 'regex (before)';
  /** Patterns tried (a token's resources), the most stars in one, and the name's size. */
  patterns: number;
  stars: number;
  nameBytes: number;
  matched: boolean;
  p50: number;
  p99: number;
  /** Matches timed. */
  n: number;
}

/** The command's start, spawn to exit, in fresh processes. */
export interface CliResult {
  command: string;
  runs: number;
  p50Ms: number;
  minMs: number;
  /** `node -e 0` on the same machine in the same run: Node's own start. */
  nodeP50Ms: number;
}

export interface TargetRow {
  name: string;
  target: string;
  actual: string;
  /** undefined: not measured in this run. */
  met: boolean | undefined;
  note?: string;
}

export interface BenchResults {
  meta: {
    date: string;
    mode: 'full' | 'quick';
    /** `taskset -c 0` for the benchmark process, or why not. */
    pinned: string;
    reps: number;
    budget: { warmup: number; iterations: number; maxMs: number };
    machine: { cpu: string; cores: number; memoryGiB: number; os: string; load: number[] };
    versions: Record<string, string>;
    durationSeconds: number;
    /** Suites that could not run, and why. */
    skipped: string[];
    notes: string[];
  };
  latency: LatencyRow[];
  peers: { kv: LatencyRow[]; queue: ThroughputRow[] };
  scale: { keys: ScaleRow[]; queue: ThroughputRow[]; sweep: SweepResult[] };
  lambda:
    | { functions: FunctionRow[]; warm: WarmHandler[]; packageSeconds: number; source: string }
    | undefined;
  /** Absent in results files written before the migration suite existed. */
  migrate?: MigrateResult;
  /** Absent in results files written before the glob suite existed. */
  glob?: GlobRow[];
  /** Absent in results files written before the cli suite existed. */
  cli?: CliResult;
  /** Absent in results files written before the cold-request suite existed. */
  coldRequest?: ColdRequestRow[];
  targets: TargetRow[];
}
