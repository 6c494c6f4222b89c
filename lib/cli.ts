/**
 * The `kubently-storage` command (bin/kubently-storage.mjs, `npm run migrate:data`). Ctrl-C
 * once stops a copy after the batch it is writing (its checkpoint is then exactly there);
 * twice exits at once (the checkpoint is still at the last committed batch).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { USAGE, usageRequested } from './data-migration/usage.js';

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  // The usage text needs none of the migrator: answered before it is loaded.
  const usage = usageRequested(argv);
  if (usage !== undefined) {
    process.stdout.write(`${USAGE}\n`);
    process.exitCode = usage;
    return;
  }
  const { run } = await import('./data-migration/cli.js');
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\nstopping at the next batch boundary (Ctrl-C again to quit now)…\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const code = await run(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: controller.signal,
  });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.exitCode = code;
}

/** Whether this file is the process's entry (not imported by the bin shim or a test). */
function isEntry(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    // Real paths on both sides: a checkout reached through a symlink, or a path with `#` or
    // `%` in it, must still run (a mismatch would exit 0 having done nothing).
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) await main();
