/**
 * serverless.yml's deploy-time settings (deploy/serverless-config.cjs): the cleanup schedule from
 * `ttl.interval` / `ttl.enabled`, and an invalid configuration refused before anything is packaged.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

const require = createRequire(import.meta.url);
const deployConfig = require('../../deploy/serverless-config.cjs') as () => Promise<{
  cleanupEnabled: boolean;
  cleanupRate: string;
}>;

// Inside the project (a packaged STORAGE_CONFIG must be: it is packaged at that relative path).
const root = join(import.meta.dirname, '../..');
mkdirSync(join(root, 'node_modules/.cache'), { recursive: true });
const dir = mkdtempSync(join(root, 'node_modules/.cache/kubently-deploy-config-'));
let n = 0;
/** A configuration file inside the project; answers its path relative to the project root. */
function configFile(yaml: string): string {
  const file = join(dir, `config-${n++}.yaml`);
  writeFileSync(file, yaml);
  return relative(root, file);
}

afterEach(() => vi.unstubAllEnvs());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('deploy-time configuration', () => {
  it.each([
    [300, 'rate(5 minutes)'],
    [60, 'rate(1 minute)'],
    [30, 'rate(1 minute)'],
    [90, 'rate(2 minutes)'],
    [86_400, 'rate(1440 minutes)'],
  ])('ttl.interval %i s schedules the cleanup at %s', async (interval, rate) => {
    vi.stubEnv('STORAGE_CONFIG', configFile(`ttl:\n  interval: ${interval}\n`));
    expect(await deployConfig()).toEqual({ cleanupEnabled: true, cleanupRate: rate });
  });

  it('ttl.enabled false disables the schedule', async () => {
    vi.stubEnv('STORAGE_CONFIG', configFile('ttl:\n  enabled: false\n'));
    expect(await deployConfig()).toEqual({ cleanupEnabled: false, cleanupRate: 'rate(5 minutes)' });
  });

  it('an invalid configuration is refused with every problem and no stack trace', async () => {
    vi.stubEnv('STORAGE_CONFIG', configFile('storage:\n  backend: mongo\nttl:\n  interval: -1\n'));
    const error = (await deployConfig().catch((caught: unknown) => caught)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(/^invalid storage configuration:/);
    expect(error.message).toContain('storage.backend');
    expect(error.message).toContain('ttl.interval');
    expect(error.stack).toBe(error.message);
  });

  it.each([
    ['an absolute path', '/etc/kubently/config.yaml'],
    ['a path outside the project', '../config.yaml'],
  ])('STORAGE_CONFIG naming %s is refused: the functions could not read it', async (_what, file) => {
    vi.stubEnv('STORAGE_CONFIG', file);
    const error = (await deployConfig().catch((caught: unknown) => caught)) as Error;
    expect(error.message).toContain('STORAGE_CONFIG: must be a path inside the project');
    expect(error.message).toContain(JSON.stringify(file));
  });
});
