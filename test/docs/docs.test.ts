/**
 * The documentation stays true where a test can tell: every HTTP route is in docs/api.md, every
 * link between pages (and every #anchor) resolves, and the README stays a front door. (Every
 * setting in docs/configuration.md: test/unit/config-file.test.ts.) The limits table of
 * docs/errors-and-limits.md states the values of lib/limits.ts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { routes } from '../../functions/runtime/routes.js';
import * as limits from '../../lib/limits.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const pages = ['README.md', ...readdirSync(join(root, 'docs')).map((name) => `docs/${name}`)].filter((p) =>
  p.endsWith('.md'),
);

/**
 * Pages the README links under "Security, reliability and deployment" that are written with the
 * changes they document; a link to one of them may point at a file not in this tree yet.
 */
const LINKED_AHEAD = new Set(
  [
    'security.md',
    'websocket-security.md',
    'errors-and-limits.md',
    'reliability.md',
    'reliability-redis.md',
    'deploying.md',
  ].map((name) => `docs/${name}`),
);

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(page: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of read(page).split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = !fenced && /^#{1,6} (.+)$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Markdown links `[text](target)` outside code, with the page they are on. */
function links(page: string): string[] {
  const text = read(page).replace(/```[\s\S]*?```/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
}

describe('docs', () => {
  it('docs/api.md documents every HTTP route of the routes table', () => {
    const page = read('docs/api.md');
    const missing = routes
      .map((route) => `${route.method} ${route.path}`)
      .filter((key) => !new RegExp(`\`${key.replace(/[{}?]/g, '\\$&')}[\`?]`).test(page));
    expect(missing).toEqual([]);
  });

  it('every relative link resolves, anchors included', () => {
    const broken: string[] = [];
    for (const page of pages) {
      for (const target of links(page)) {
        if (/^[a-z]+:/.test(target)) continue;
        const [path = '', anchor] = target.split('#');
        const file = path === '' ? page : relative(root, resolve(root, dirname(page), path));
        if (LINKED_AHEAD.has(file)) continue;
        if (!existsSync(join(root, file))) broken.push(`${page}: ${target} (no such file)`);
        else if (anchor !== undefined && file.endsWith('.md') && !anchors(file).has(anchor)) {
          broken.push(`${page}: ${target} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('the README links every page of docs/', () => {
    const readme = read('README.md');
    const unlinked = pages.filter((p) => p.startsWith('docs/') && !readme.includes(`](${p})`));
    expect(unlinked).toEqual([]);
    for (const page of LINKED_AHEAD) expect(readme).toContain(`](${page})`);
  });

  it('a page over 10 KB opens with a table of contents', () => {
    const long = pages.filter((p) => p.startsWith('docs/') && Buffer.byteLength(read(p)) > 10 * 1024);
    const without = long.filter((p) => !/^- \[[^\]]+\]\(#/m.test(read(p).split('\n## ')[0]!));
    expect(without).toEqual([]);
  });

  it('the README is a front door: under 15 KB, the manual in docs/', () => {
    expect(Buffer.byteLength(read('README.md'))).toBeLessThanOrEqual(15 * 1024);
  });

  it('code and tests cite the contract at docs/api.md', () => {
    const oldName = ['API', 'md'].join('.');
    const citing: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
        const path = `${dir}/${entry.name}`;
        if (entry.isDirectory()) walk(path);
        else if (
          /\.(ts|cjs|mjs|yml)$/.test(entry.name) &&
          new RegExp(`(^|[^/])${oldName}`).test(read(path))
        ) {
          citing.push(path);
        }
      }
    };
    for (const dir of ['lib', 'functions', 'test', 'local', 'bench']) walk(dir);
    expect(citing).toEqual([]);
  });

  it('docs/errors-and-limits.md states every limit of lib/limits.ts with its value', () => {
    const section = read('docs/errors-and-limits.md').split('\n## Limits\n')[1]!.split('\n#')[0]!;
    const rows = section
      .split('\n')
      .filter((line) => line.startsWith('| ') && !/^\| [-\s|]+$/.test(line))
      .slice(1)
      .map((line) => line.split(' | ').map((cell) => cell.replace(/^\|\s*|\s*\|$/g, '').trim()));
    /** How the page writes a value: sizes in KiB, every other number as it is. */
    const written = (name: string, value: number) =>
      name.endsWith('_BYTES') && value % 1024 === 0 ? `${value / 1024} KiB` : String(value);
    const stated = new Map<string, string>();
    const wrong: string[] = [];
    for (const [, limit = '', constants = ''] of rows) {
      for (const [, name] of constants.matchAll(/`([A-Z_]+)`/g)) {
        const value = (limits as Record<string, unknown>)[name!];
        if (typeof value !== 'number') {
          wrong.push(`${name} is no constant of lib/limits.ts`);
          continue;
        }
        stated.set(name!, limit);
        const text = written(name!, value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        if (!new RegExp(`(^|[^\\d.,])${text}(?!\\d|,\\d)`).test(limit)) {
          wrong.push(`${name} is ${written(name!, value)}, the page says "${limit}"`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(Object.keys(limits).filter((name) => !stated.has(name))).toEqual([]);
  });
});
