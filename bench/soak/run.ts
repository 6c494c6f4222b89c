/**
 * `npm run soak -- [--minutes 10] [--rate 25] [--backends postgresql,redis] [--out .scratch/soak.json]`:
 * a bounded load run per backend (bench/soak/soak.ts), one after the other, against `npm start`
 * on PostgreSQL (DATABASE_URL, default the local `test` database) and Redis (REDIS_URL, default
 * 127.0.0.1:6379); `hybrid` may be added to `--backends`. Prints p50/p99 per route, memory and
 * connections over the run, writes the reports as JSON to `--out`, and exits non-zero when a
 * run's verdict fails.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { render } from './report.js';
import { runSoak, type SoakBackend, type SoakReport } from './soak.js';

const BACKENDS: SoakBackend[] = ['postgresql', 'redis', 'hybrid'];

function option(args: string[], flag: string, fallback: string): string {
  const at = args.indexOf(flag);
  return at === -1 ? fallback : (args[at + 1] ?? fallback);
}

function parseArgs(args: string[]): {
  minutes: number;
  rate: number;
  backends: SoakBackend[];
  out: string;
} {
  const minutes = Number(option(args, '--minutes', '10'));
  const rate = Number(option(args, '--rate', '25'));
  if (!(minutes > 0 && minutes <= 24 * 60))
    throw new Error(`--minutes: a number in (0, 1440], got ${minutes}`);
  if (!(rate > 0 && rate <= 1000)) throw new Error(`--rate: a number in (0, 1000], got ${rate}`);
  const backends = option(args, '--backends', 'postgresql,redis').split(',') as SoakBackend[];
  for (const b of backends)
    if (!BACKENDS.includes(b)) throw new Error(`--backends: ${b} is not one of ${BACKENDS}`);
  return { minutes, rate, backends, out: option(args, '--out', '.scratch/soak.json') };
}

async function main(): Promise<void> {
  const { minutes, rate, backends, out } = parseArgs(process.argv.slice(2));
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${cpus().length} cores`,
  );
  const reports: SoakReport[] = [];
  for (const backend of backends) {
    const report = await runSoak({ backend, minutes, rate, log: (line) => console.log(line) });
    console.log(render(report));
    reports.push(report);
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(reports, null, 2)}\n`);
  console.log(`\nreports written to ${out}`);
  if (reports.some((r) => !r.ok)) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
