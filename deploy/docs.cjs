/**
 * `npm run docs:parameters`: writes the parameter table of deploy/parameter-definitions.cjs into
 * docs/deploying.md, between its markers, and has biome align it (test/deploy/parameters.test.ts
 * checks they agree, alignment aside).
 */
const { execFileSync } = require('node:child_process');
const { readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const { parameterTable } = require('./parameter-definitions.cjs');

const root = path.join(__dirname, '..');
const DOC = path.join(root, 'docs', 'deploying.md');
const START = '<!-- parameters:start (npm run docs:parameters) -->';
const END = '<!-- parameters:end -->';

/** The document with the current table between the markers. */
function withTable(text) {
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${DOC}: the markers ${START} … ${END} are missing`);
  return `${text.slice(0, start + START.length)}\n${parameterTable()}\n${text.slice(end)}`;
}

/** A table row without its alignment: cells trimmed, separator rows as `---`. */
const unaligned = (text) =>
  text
    .split('\n')
    .map((line) => (line.startsWith('|') ? line.replace(/ {2,}/g, ' ').replace(/-{3,}/g, '---') : line))
    .join('\n');

/** Whether `text` holds the current table. */
function isCurrent(text) {
  return unaligned(text) === unaligned(withTable(text));
}

if (require.main === module) {
  writeFileSync(DOC, withTable(readFileSync(DOC, 'utf8')));
  execFileSync(path.join(root, 'node_modules', '.bin', 'biome'), ['format', '--write', DOC], {
    stdio: 'inherit',
  });
}
module.exports = { DOC, isCurrent, withTable };
