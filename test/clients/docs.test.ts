/**
 * docs/clients.md shows each example file as it is, and each one is run by a client test against
 * `npm start` (the executor waits by push, falling back to long polls where push is not served).
 */
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

  /** Where each example is run: the test file, and how it imports the example. */
  const runners: Record<string, [string, RegExp]> = {
    'clients/typescript/examples/executor.ts': [
      'test/clients/typescript.test.ts',
      /import \{ executor \} from '\.\.\/\.\.\/clients\/typescript\/examples\/executor\.js'/,
    ],
    'clients/typescript/examples/agent.ts': [
      'test/clients/typescript.test.ts',
      /import \{ agent \} from '\.\.\/\.\.\/clients\/typescript\/examples\/agent\.js'/,
    ],
    'clients/python/examples/executor.py': [
      'clients/python/tests/test_live.py',
      /from executor import executor/,
    ],
    'clients/python/examples/agent.py': ['clients/python/tests/test_live.py', /from agent import agent/],
  };

  for (const [, path] of shown) {
    it(`${path} is run by a test, and its executor waits by push`, () => {
      const [testFile, importLine] = runners[path!] ?? ['(none)', /$^/];
      expect(read(testFile), `${testFile} runs ${path}`).toMatch(importLine);
      if (path!.includes('executor')) expect(read(path!)).toMatch(/delivery[:=] ?['"]auto['"]/);
    });
  }
});
