/**
 * `kubently-storage migrate …` as an operator runs it, on the real servers: bad input answered
 * with one line and exit 2 (nothing written), a copy killed with SIGKILL or stopped with Ctrl-C
 * resumed by running it again, validate's report and exit code, dry run, status, progress on
 * a terminal and in a log, the legacy import, sync under dual-write, and the bin and npm script.
 *
 * Most cases call `run()` in-process with captured output; the kill and Ctrl-C cases and the
 * entry points spawn the real process. Every run gets an explicit environment and a working
 * directory without a `config.yaml`, so neither a developer's config nor STORAGE_CONFIG leaks in.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../lib/data-migration/cli.js';
import { quoteIdent } from '../../lib/storage/postgresql/sql.js';
import { type PopulateCounts, populate } from './populate.js';
import {
  adminSql,
  DATABASE_URL,
  migrateUnavailable,
  REDIS_URL,
  redisStorage as redisStorageOn,
  Scratch,
} from './support.js';

const unavailable = await migrateUnavailable();

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const CLI = join(ROOT, 'lib/cli.ts');
const STACK = /\n\s+at /;

const SMALL: PopulateCounts = { kv: 2000, sessions: 200, tokens: 30, queues: 200, events: 200, audit: 300 };
// Big enough that a copy with small batches is still running when it is killed.
const BIG: PopulateCounts = { kv: 20_000, sessions: 500, tokens: 50, queues: 400, events: 2000, audit: 6000 };

/** The environment without anything that would point the CLI somewhere else. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'NODE_OPTIONS']) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  return env;
}

interface Result {
  code: number;
  out: string;
  err: string;
  ms: number;
}

describe.skipIf(unavailable !== undefined)('kubently-storage migrate (CLI)', () => {
  const scratch = new Scratch();
  // No config.yaml here: what the tests pass is all the CLI sees.
  const cwd = mkdtempSync(join(tmpdir(), 'kst-cli-'));
  let small: string;
  let big: string;

  const conn = (prefix: string, schema: string) => [
    '--redis-url',
    REDIS_URL,
    '--prefix',
    prefix,
    '--database-url',
    DATABASE_URL,
    '--schema',
    schema,
  ];

  async function cli(
    argv: string[],
    options: { ttyErr?: boolean; onErr?: (text: string) => void; signal?: AbortSignal } = {},
  ): Promise<Result> {
    let out = '';
    let err = '';
    const started = Date.now();
    const code = await run(argv, {
      stdout: {
        write: (text) => {
          out += text;
        },
      },
      stderr: {
        isTTY: options.ttyErr,
        write: (text) => {
          err += text;
          options.onErr?.(text);
        },
      },
      env: cleanEnv(),
      cwd,
      signal: options.signal,
    });
    return { code, out, err, ms: Date.now() - started };
  }

  /** The real CLI in a child process. */
  function spawnCli(argv: string[]): { child: ChildProcess; done: Promise<Result> } {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', TSX, CLI, ...argv], {
      cwd,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const done = new Promise<Result>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) =>
        resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : -1), out, err, ms: Date.now() - started }),
      );
    });
    return { child, done };
  }

  async function query<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
    const sql = await adminSql();
    try {
      return await sql.query<T & Record<string, unknown>>(text, params);
    } finally {
      await sql.close();
    }
  }
  const t = (schema: string, table: string) => `${quoteIdent(schema)}.${quoteIdent(table)}`;
  const count = async (schema: string, table: string) =>
    Number((await query<{ n: string }>(`SELECT count(*) AS n FROM ${t(schema, table)}`))[0]!.n);

  interface CheckpointRow {
    state: { stores?: Record<string, { read?: number; done?: boolean }>; auditMark?: string | null };
    finished: boolean;
    started_at: Date;
  }
  async function checkpoints(schema: string): Promise<CheckpointRow[]> {
    const rows = await query<{ state: string; finished_at: Date | null; started_at: Date }>(
      `SELECT state, finished_at, started_at FROM ${t(schema, 'data_migrations')}`,
    );
    return rows.map((r) => ({
      state: JSON.parse(r.state) as CheckpointRow['state'],
      finished: r.finished_at !== null,
      started_at: r.started_at,
    }));
  }

  /** Waits until `check` holds while the child is still running, or fails with `what`. */
  async function waitFor(what: string, check: () => Promise<boolean>, running: () => boolean) {
    await vi.waitFor(
      async () => {
        if (!running()) throw new Error(`the copy ended before ${what}`);
        expect(await check(), what).toBe(true);
      },
      { timeout: 60_000, interval: 10 },
    );
  }

  const redisStorage = (prefix: string) =>
    redisStorageOn(prefix, { queues: { maxAttempts: 1 }, events: { maxHistory: 10_000 } });

  beforeAll(async () => {
    small = scratch.prefix();
    big = scratch.prefix();
    for (const [prefix, counts] of [
      [small, SMALL],
      [big, BIG],
    ] as const) {
      const storage = redisStorage(prefix);
      try {
        await populate(storage, counts);
      } finally {
        await storage.close();
      }
    }
  }, 120_000);
  afterAll(async () => {
    rmSync(cwd, { recursive: true, force: true });
    await scratch.cleanup();
  }, 60_000);

  it('bad input: exit 2, one line naming the problem, no stack trace, nothing written', async () => {
    const schema = await scratch.schema();
    const empty = await scratch.schema(false);
    const ok = conn(small, schema);
    const cases: [string, string[], RegExp][] = [
      [
        'unknown --from',
        ['migrate', 'copy', '--from', 'x', ...ok],
        /unknown --from "x": expected redis .* or legacy/,
      ],
      [
        'unknown --to',
        ['migrate', 'copy', '--to', 'mysql', ...ok],
        /unknown --to "mysql": the only target is postgresql/,
      ],
      [
        'unknown command',
        ['migrate', 'frobnicate', ...ok],
        /unknown command "frobnicate": expected copy, validate/,
      ],
      ['unknown group', ['migrat', 'copy', ...ok], /unknown command "migrat": expected migrate/],
      ['unknown option', ['migrate', 'copy', '--frob', ...ok], /unknown option '--frob'/i],
      [
        'unknown store',
        ['migrate', 'copy', '--only', 'nosuchstore', ...ok],
        /--only: unknown store "nosuchstore"/,
      ],
      [
        'zero batch',
        ['migrate', 'copy', '--batch-size', '0', ...ok],
        /--batch-size: expected a whole number .* got "0"/,
      ],
      [
        'negative sample',
        ['migrate', 'validate', '--sample', '-1', ...ok],
        /--sample: expected a whole number .* got "-1"/,
      ],
      [
        'redis URL not a URL',
        ['migrate', 'copy', ...ok, '--redis-url', 'not a url'],
        /redis URL is not a URL \(--redis-url or REDIS_URL\)/,
      ],
      [
        'redis URL scheme',
        ['migrate', 'copy', ...ok, '--redis-url', 'http://127.0.0.1:6379'],
        /redis URL must start with redis:\/\/ or rediss:\/\/ .*got "http:\/\/127\.0\.0\.1:6379"/,
      ],
      [
        'postgres URL scheme',
        ['migrate', 'copy', ...ok, '--database-url', 'mysql://127.0.0.1/test'],
        /postgresql URL must start with postgres:\/\/ or postgresql:\/\//,
      ],
      [
        'redis unreachable',
        ['migrate', 'copy', ...ok, '--redis-url', 'redis://127.0.0.1:1'],
        /cannot reach the source Redis at redis:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/,
      ],
      [
        'postgres unreachable',
        ['migrate', 'copy', ...ok, '--database-url', 'postgres://postgres:s3cret@127.0.0.1:1/test'],
        /cannot reach the target PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/test: connect ECONNREFUSED/,
      ],
      [
        'schema without migrations',
        ['migrate', 'copy', ...conn(small, empty)],
        new RegExp(`target schema "${empty}" .* has no tables: run \`npm run migrate:schema\``),
      ],
      ['--move without queues', ['migrate', 'copy', '--move', ...ok], /--move applies to queues only/],
      [
        'sync without dual-write',
        ['migrate', 'sync', ...ok],
        /sync needs the deployment to dual-write first: .*`storage.backend: hybrid`.*`migration.dual_write: true`/,
      ],
    ];
    for (const [name, argv, message] of cases) {
      const r = await cli(argv);
      const context = `${name}: ${r.err}`;
      expect(r.code, context).toBe(2);
      const [first] = r.err.split('\n');
      expect(first, context).toMatch(/^migrate: /);
      expect(first, context).toMatch(message);
      expect(r.err, context).not.toMatch(STACK);
      expect(r.err, context).not.toContain('s3cret');
      expect(r.out, context).toBe('');
      expect(r.ms, `${name} took ${r.ms} ms`).toBeLessThan(5000);
    }
    for (const table of ['data_migrations', 'kv_store', 'sessions', 'audit_log', 'events', 'queues'])
      expect(await count(schema, table), table).toBe(0);
    // The empty schema stayed empty: no table was created in it.
    const tables = await query(`SELECT 1 FROM information_schema.tables WHERE table_schema = $1`, [empty]);
    expect(tables).toEqual([]);
  });

  it('a copy killed with SIGKILL midway resumes when run again: nothing twice, validate agrees', async () => {
    const schema = await scratch.schema();
    const argv = ['migrate', 'copy', ...conn(big, schema), '--batch-size', '100'];
    const first = spawnCli(argv);
    let running = true;
    void first.done.then(() => {
      running = false;
    });
    // Killed inside the audit store, the one that must never be appended twice.
    await waitFor(
      'the checkpoint showed audit progress',
      async () => {
        const [c] = await checkpoints(schema);
        return c !== undefined && !c.finished && Boolean(c.state.auditMark);
      },
      () => running,
    );
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.code, killed.err).toBe(137);
    const [checkpoint] = await checkpoints(schema);
    expect(checkpoint?.finished).toBe(false);
    expect(await count(schema, 'audit_log')).toBeLessThan(BIG.audit);

    const second = spawnCli(argv);
    const again = await second.done;
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain('(resumed from checkpoint)');
    expect(again.err).not.toMatch(STACK);
    expect(await count(schema, 'audit_log')).toBe(BIG.audit);
    expect(await count(schema, 'events')).toBe(BIG.events);
    expect(await count(schema, 'kv_store')).toBe(BIG.kv);
    expect((await checkpoints(schema))[0]?.finished).toBe(true);

    const v = await cli(['migrate', 'validate', ...conn(big, schema)]);
    expect(v.code, v.out).toBe(0);
    expect(v.out).toContain('OK: source and target agree');
  }, 90_000);

  it('Ctrl-C stops after the current batch, says how to resume, exits 1; the next run resumes', async () => {
    const schema = await scratch.schema();
    const argv = ['migrate', 'copy', ...conn(small, schema), '--batch-size', '20'];
    const first = spawnCli(argv);
    let running = true;
    void first.done.then(() => {
      running = false;
    });
    await waitFor(
      'the checkpoint showed progress',
      async () => {
        const [c] = await checkpoints(schema);
        return c !== undefined && !c.finished && (c.state.stores?.kv?.read ?? 0) > 0;
      },
      () => running,
    );
    first.child.kill('SIGINT');
    const stopped = await first.done;
    expect(stopped.code, stopped.err).toBe(1);
    expect(stopped.err).toContain('stopping at the next batch boundary');
    expect(stopped.err).not.toMatch(STACK);
    expect(stopped.out).toContain('interrupted: run the same command again to resume from the checkpoint');
    expect(stopped.out).toContain('stopped');
    const [checkpoint] = await checkpoints(schema);
    expect(checkpoint?.finished).toBe(false);

    const again = await cli(argv);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain('(resumed from checkpoint)');
    expect(await count(schema, 'kv_store')).toBe(SMALL.kv);
    expect(await count(schema, 'audit_log')).toBe(SMALL.audit);
  }, 90_000);

  it('validate: exit 1 naming a changed key, --sample, --json', async () => {
    const schema = await scratch.schema();
    const args = conn(small, schema);
    const copied = await cli(['migrate', 'copy', ...args]);
    expect(copied.code, `${copied.out}\n${copied.err}`).toBe(0);
    const clean = await cli(['migrate', 'validate', ...args]);
    expect(clean.code, clean.out).toBe(0);
    expect(clean.out).toContain('OK: source and target agree');

    await query(`UPDATE ${t(schema, 'kv_store')} SET value = '"tampered"' WHERE key = 'key:0000005'`);
    const bad = await cli(['migrate', 'validate', ...args]);
    expect(bad.code, bad.out).toBe(1);
    expect(bad.out).toMatch(/kv keys .*MISMATCH/);
    expect(bad.out).toContain('kv keys: changed "key:0000005" field value');
    expect(bad.out).toContain('MISMATCH: see above');
    expect(bad.err).not.toMatch(STACK);

    const sampled = await cli(['migrate', 'validate', '--sample', '50', '--only', 'kv,sessions', ...args]);
    expect([0, 1]).toContain(sampled.code);
    expect(sampled.out).toContain('(sample of 50 per store)');

    const json = await cli(['migrate', 'validate', '--json', '--sample', '50', ...args]);
    const sampledReport = JSON.parse(json.out);
    // The sample may or may not draw the tampered key: the exit code follows the report.
    expect(json.code).toBe(sampledReport.ok ? 0 : 1);
    expect(sampledReport.sample).toBe(50);
    expect(sampledReport.stores.kv.sourceCount).toBe(SMALL.kv);
    expect(sampledReport.stores.kv.checked).toBeLessThanOrEqual(50);

    const full = await cli(['migrate', 'validate', '--json', ...args]);
    expect(full.code).toBe(1);
    const report = JSON.parse(full.out);
    expect(report.ok).toBe(false);
    expect(report.stores.kv.changed).toBe(1);
    expect(report.stores.kv.examples.changed).toEqual([{ id: 'key:0000005', field: 'value' }]);
  });

  it('dry run writes nothing; status shows the checkpoint; progress lines in a log, a redrawn bar on a terminal', async () => {
    const schema = await scratch.schema();
    const args = conn(small, schema);

    const none = await cli(['migrate', 'status', ...args]);
    expect(none.code).toBe(0);
    expect(none.out).toContain('no checkpoint');

    const dry = await cli(['migrate', 'copy', '--dry-run', ...args]);
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toContain('dry run (nothing written)');
    expect(dry.out).toMatch(/kv keys\s+2,000\s+0\s/);
    for (const table of [
      'data_migrations',
      'kv_store',
      'sessions',
      'tokens',
      'queues',
      'events',
      'audit_log',
    ])
      expect(await count(schema, table), table).toBe(0);
    // Not a terminal: plain lines, one per store at least, never a carriage return.
    expect(dry.err).toMatch(/^copy: kv keys: 2,000(\/[\d,]+)? items, /m);
    expect(dry.err).toMatch(/^copy: audit entries: /m);
    expect(dry.err).not.toContain('\r');

    // A terminal: the bar is redrawn in place. Stopped after its first batch (as Ctrl-C would).
    const controller = new AbortController();
    const stopped = await cli(['migrate', 'copy', '--batch-size', '100', ...args], {
      ttyErr: true,
      signal: controller.signal,
      onErr: () => controller.abort(),
    });
    expect(stopped.code).toBe(1);
    expect(stopped.err).toContain('\r');
    expect(stopped.err).toContain('\u001b[K');
    expect(stopped.err.endsWith('\n')).toBe(true);
    expect(stopped.out).toContain('interrupted');

    const status = await cli(['migrate', 'status', ...args]);
    expect(status.code).toBe(0);
    expect(status.out).toContain(`schema ${schema}`);
    expect(status.out).toContain('not finished: `copy` resumes it');
    expect(status.out).toMatch(/kv keys\s+\d+\s+in progress/);

    const resumed = await cli(['migrate', 'copy', ...args]);
    expect(resumed.code).toBe(0);
    expect(resumed.out).toContain('(resumed from checkpoint)');
    const finished = await cli(['migrate', 'status', ...args]);
    expect(finished.out).toMatch(/, finished \d{4}-/);
  });

  it('legacy: legacy-fixture, copy --from legacy, then validate --from legacy in a separate run', async () => {
    const prefix = scratch.prefix();
    const schema = await scratch.schema();
    const fixture = await cli([
      'migrate',
      'legacy-fixture',
      '--redis-url',
      REDIS_URL,
      '--prefix',
      prefix,
      '--sessions',
      '40',
      '--clusters',
      '3',
    ]);
    expect(fixture.code, fixture.err).toBe(0);
    expect(JSON.parse(fixture.out).counts).toBeDefined();

    const args = ['--from', 'legacy', ...conn(prefix, schema)];
    const copied = await cli(['migrate', 'copy', ...args]);
    expect(copied.code, copied.err).toBe(0);
    expect(copied.out).not.toContain('resumed');
    expect(await count(schema, 'sessions')).toBeGreaterThan(0);
    expect(await count(schema, 'tokens')).toBeGreaterThan(0);
    // Tokens without a creation time take the job's start, which validate reads back.
    const [job] = await checkpoints(schema);
    const created = await query<{ c: Date }>(`SELECT DISTINCT created_at AS c FROM ${t(schema, 'tokens')}`);
    expect(created.map((r) => r.c.getTime())).toContain(job!.started_at.getTime());

    const v = await cli(['migrate', 'validate', ...args]);
    expect(v.code, v.out).toBe(0);
    expect(v.out).toContain('OK: source and target agree');
  });

  it('sync under dual-write: four steps, copy and validation tables, lag, what to switch next', async () => {
    const prefix = scratch.prefix();
    const schema = await scratch.schema();
    const storage = redisStorage(prefix);
    try {
      await populate(storage, { kv: 500, sessions: 50, tokens: 10, queues: 20, events: 20, audit: 50 });
    } finally {
      await storage.close();
    }
    const file = join(cwd, `hybrid-${schema}.yaml`);
    writeFileSync(
      file,
      [
        'storage:',
        '  backend: hybrid',
        'redis:',
        `  url: ${REDIS_URL}`,
        `  key_prefix: "${prefix}"`,
        'postgresql:',
        `  url: ${DATABASE_URL}`,
        `  schema: ${schema}`,
        '  listen: false',
        'migration:',
        '  dual_write: true',
        '',
      ].join('\n'),
    );
    const r = await cli(['migrate', 'sync', '--config', file]);
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    expect(r.err).not.toMatch(STACK);
    for (const step of ['1/4 dual-write is on', '2/4 copying', '3/4 validating', '4/4 lag'])
      expect(r.out).toContain(step);
    expect(r.out).toMatch(/store\s+read\s+written/);
    expect(r.out).toMatch(/store\s+source\s+target\s+checked/);
    expect(r.out).toContain('OK: source and target agree');
    expect(r.out).toMatch(/a write mirrored from redis to postgresql in \d+ ms/);
    expect(r.out).toContain('what to switch next (hybrid.routing):');
    expect(r.out).toContain('cache: in step');
    expect(r.out).toContain('queues: not dual-written');
    expect(await count(schema, 'kv_store')).toBeGreaterThanOrEqual(500);
  });

  it('the bin and the npm script run the CLI', async () => {
    const exec = (command: string, argv: string[]) =>
      new Promise<Result>((resolve, reject) => {
        const started = Date.now();
        const child = spawn(command, argv, { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
        });
        child.on('error', reject);
        child.on('close', (code) => resolve({ code: code ?? -1, out, err, ms: Date.now() - started }));
      });
    // The bin runs the CLI built into dist/ (npm ci builds it at `prepare`): build it as that does.
    execFileSync(process.execPath, ['tools/build-cli.mjs'], { cwd: ROOT });
    // A checkout reached through a symlink runs too (the entry check compares real paths).
    const link = join(cwd, 'checkout');
    symlinkSync(ROOT, link);
    const [bin, linked, npm, npmBad] = await Promise.all([
      exec(process.execPath, ['bin/kubently-storage.mjs', 'migrate', '--help']),
      exec(process.execPath, ['--import', TSX, join(link, 'lib/cli.ts'), 'migrate', 'copy', '--from', 'x']),
      exec('npm', ['run', '--silent', 'migrate:data', '--', '--help']),
      exec('npm', ['run', '--silent', 'migrate:data', '--', 'copy', '--from', 'x']),
    ]);
    expect(bin.code, bin.err).toBe(0);
    expect(bin.out).toContain('usage: kubently-storage migrate <command> [options]');
    expect(linked.code, linked.err).toBe(2);
    expect(linked.err).toContain('migrate: unknown --from "x"');
    expect(npm.code, npm.err).toBe(0);
    expect(npm.out).toContain('usage: kubently-storage migrate <command> [options]');
    expect(npmBad.code).toBe(2);
    expect(npmBad.err).toContain('migrate: unknown --from "x"');
    expect(npmBad.err).not.toMatch(STACK);
  });
});
