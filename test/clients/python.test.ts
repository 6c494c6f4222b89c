/**
 * The Python client's pytest suite (clients/python/tests) against the service as `npm start`
 * serves it: one start, one pytest run with the URLs and token in its environment, and one
 * vitest test per pytest test, so the counts land in this report.
 *
 * It needs Debian's /usr/bin/python3 with python3-websockets and python3-pytest (.ci/run
 * installs them). Without them the suite skips, saying why in its title; with CI set it fails.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Offline, startOffline } from '../support/servers/offline.js';
import { warmUp } from './support.js';

const PYTHON = '/usr/bin/python3';
const root = fileURLToPath(new URL('../..', import.meta.url));
const pytestArgs = ['-m', 'pytest', 'clients/python/tests', '-p', 'no:cacheprovider'];

/** The pytest node ids (`tests/test_live.py::test_kv_round_trip`), or why they cannot be listed. */
function collect(): { ids: string[]; problem?: string } {
  try {
    const out = execFileSync(PYTHON, [...pytestArgs, '--collect-only', '-q'], {
      cwd: root,
      encoding: 'utf8',
    });
    return { ids: out.split('\n').filter((line) => line.includes('::')) };
  } catch (error) {
    const {
      stdout = '',
      stderr = '',
      message,
    } = error as { stdout?: string; stderr?: string; message: string };
    return {
      ids: [],
      problem: `${PYTHON} -m pytest cannot collect: ${stderr || stdout || message}`.slice(0, 2000),
    };
  }
}

const { ids, problem } = collect();
if (problem && !process.env.CI) console.warn(`\n⚠ Python client tests SKIPPED: ${problem}\n`);
const suite = problem && !process.env.CI ? describe.skip : describe;
const skipReason =
  problem && !process.env.CI ? ' — SKIPPED: python3-websockets / python3-pytest missing' : '';

interface Outcome {
  status: 'passed' | 'failed' | 'skipped';
  detail: string;
}

/** Outcomes by node id from pytest's JUnit XML (`classname` `tests.test_live`, `name` `test_x`). */
function parseJunit(xml: string): Map<string, Outcome> {
  const outcomes = new Map<string, Outcome>();
  for (const match of xml.matchAll(
    /<testcase classname="([^"]*)" name="([^"]*)"[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g,
  )) {
    const [, classname, name, inner = ''] = match;
    const file = `${classname!.replaceAll('.', '/')}.py`;
    const status = /<(failure|error)/.test(inner) ? 'failed' : /<skipped/.test(inner) ? 'skipped' : 'passed';
    outcomes.set(`${file}::${name}`, { status, detail: inner });
  }
  return outcomes;
}

suite(`Python client (pytest) against npm start${skipReason}`, { timeout: 120_000 }, () => {
  let offline: Offline;
  let outcomes = new Map<string, Outcome>();
  let output = '';
  const scratch = mkdtempSync(join(tmpdir(), 'kubently-pytest-'));

  beforeAll(async () => {
    if (problem) throw new Error(problem);
    offline = await startOffline();
    await warmUp(offline);
    const report = join(scratch, 'junit.xml');
    await new Promise<void>((resolve, reject) => {
      const child = spawn(PYTHON, [...pytestArgs, '-q', `--junitxml=${report}`], {
        cwd: root,
        env: {
          ...process.env,
          KUBENTLY_URL: offline.baseUrl,
          KUBENTLY_WS_URL: offline.wsUrl,
          KUBENTLY_TOKEN: offline.adminToken,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.on('data', (chunk) => {
        output += chunk;
      });
      child.stderr.on('data', (chunk) => {
        output += chunk;
      });
      child.once('error', reject);
      child.once('exit', () => resolve());
    });
    outcomes = parseJunit(readFileSync(report, 'utf8'));
  }, 600_000);

  afterAll(async () => {
    await offline?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  it('pytest collected the client tests', () => {
    expect(ids.length, problem).toBeGreaterThan(0);
  });

  for (const id of ids) {
    it(id, () => {
      const outcome = outcomes.get(id);
      expect(outcome, `no result for ${id}; pytest said:\n${output}`).toBeDefined();
      expect(outcome!.status, outcome!.detail).toBe('passed');
    });
  }
});
