/** docs/clients.md shows each example file as it is (the files the client tests run). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('docs/clients.md', () => {
  const page = read('docs/clients.md');
  const shown = [...page.matchAll(/<!-- example: (\S+) -->\n\n```\w+\n([\s\S]*?)```\n/g)];

  it('shows the four examples', () => {
    expect(shown.map((match) => match[1])).toEqual([
      'clients/typescript/examples/executor.ts',
      'clients/typescript/examples/agent.ts',
      'clients/python/examples/executor.py',
      'clients/python/examples/agent.py',
    ]);
  });

  for (const [, path, code] of shown) {
    it(`shows ${path} as it is`, () => {
      expect(code).toBe(read(path!));
    });
  }
});
