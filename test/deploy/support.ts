/**
 * Packaging in tests: `serverlessPackage(args, env)` runs `serverless package` into a temporary
 * folder (its own esbuild work folder, dummy AWS credentials) and answers the template and the
 * zips' files; `readZip` reads a zip without a dependency.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';

export const root = join(import.meta.dirname, '../..');
const serverlessBin = join(root, 'node_modules/.bin/serverless');
/** Packaging takes 20–60 s on a small shared machine: a ceiling, not an expectation. */
export const PACKAGE_TIMEOUT_MS = 240_000;

// biome-ignore lint/suspicious/noExplicitAny: a CloudFormation template is any JSON.
export type Template = { Resources: Record<string, any>; Outputs: Record<string, any> };

export interface Packaged {
  template: Template;
  /** Function name → (file in its zip → contents). */
  zips: Record<string, Map<string, Buffer>>;
  /** Everything serverless printed. */
  output: string;
}

/** Thrown when `serverless package` fails; carries what it printed. */
export class PackageError extends Error {
  constructor(readonly output: string) {
    super(`serverless package failed:\n${output}`);
  }
}

/** The environment packaging runs in: the test's PATH and HOME, dummy AWS credentials, and `env`. */
function packagingEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    SLS_TELEMETRY_DISABLED: '1',
    ...env,
  };
}

/** Runs `serverless package …args` and answers what it wrote; rejects with `PackageError`. */
export async function serverlessPackage(args: string[], env: Record<string, string> = {}): Promise<Packaged> {
  const out = mkdtempSync(join(tmpdir(), 'kubently-package-'));
  const workFolder = `.esbuild-test-${process.pid}-${Date.now()}`;
  try {
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        serverlessBin,
        ['package', '--package', out, ...args],
        {
          cwd: root,
          env: packagingEnv({ ESBUILD_WORK_FOLDER: workFolder, ...env }),
          maxBuffer: 16 * 1024 * 1024,
        },
        (error, stdout, stderr) =>
          error ? reject(new PackageError(`${stdout}${stderr}`)) : resolve(`${stdout}${stderr}`),
      );
    });
    const template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'));
    const zips: Packaged['zips'] = {};
    for (const file of readdirSync(out).filter((name) => name.endsWith('.zip'))) {
      zips[file.slice(0, -'.zip'.length)] = readZip(readFileSync(join(out, file)));
    }
    return { template, zips, output };
  } finally {
    rmSync(out, { recursive: true, force: true });
    rmSync(join(root, workFolder), { recursive: true, force: true });
  }
}

/** The files of a zip (stored or deflated entries), read through its central directory. */
export function readZip(zip: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error('not a zip: no end of central directory');
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  for (let i = 0; i < count; i++) {
    const method = zip.readUInt16LE(at + 10);
    const compressed = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    const dataAt = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(dataAt, dataAt + compressed);
    if (!name.endsWith('/')) files.set(name, method === 0 ? Buffer.from(data) : inflateRawSync(data));
    at += 46 + nameLength + extraLength + commentLength;
  }
  return files;
}
