/**
 * The `kubently-storage` command's start: `migrate --help` in a fresh `node` process, spawn to
 * exit, as an operator runs it (bin/kubently-storage.mjs loading dist/cli.mjs, built at
 * `prepare`), beside `node -e 0` (the floor: Node's own start on this machine).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Context } from '../lib/context.js';
import { median } from '../lib/measure.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/kubently-storage.mjs');

/** Milliseconds from spawn to exit of `node …args`, each run in a fresh process. */
function wallTimes(args: string[], runs: number): number[] {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    const out = spawnSync(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const ms = performance.now() - t;
    if (out.status !== 0) throw new Error(`node ${args.join(' ')} exited ${out.status}: ${out.stderr}`);
    times.push(ms);
  }
  return times;
}

export async function cliSuite(ctx: Context): Promise<void> {
  if (!existsSync(join(ROOT, 'dist/cli.mjs'))) {
    ctx.skip('cli', 'dist/cli.mjs is missing: run `npm run build:cli`');
    return;
  }
  const runs = ctx.options.quick ? 5 : 15;
  // One untimed start of each warms the file cache, as a second run from a shell would be.
  wallTimes([BIN, 'migrate', '--help'], 1);
  const help = wallTimes([BIN, 'migrate', '--help'], runs);
  const node = wallTimes(['-e', '0'], runs);
  ctx.results.cli = {
    command: 'kubently-storage migrate --help',
    runs,
    p50Ms: median(help),
    minMs: Math.min(...help),
    nodeP50Ms: median(node),
  };
  ctx.log(
    `  kubently-storage migrate --help: p50 ${median(help).toFixed(0)} ms (min ${Math.min(...help).toFixed(0)}), node -e 0: p50 ${median(node).toFixed(0)} ms`,
  );
}
