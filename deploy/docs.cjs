/**
 * `npm run docs:parameters`: writes the parameter table of deploy/parameter-definitions.cjs into
 * docs/deploying.md, between its markers (test/deploy/parameters.test.ts checks they agree).
 */
const { readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const { parameterTable } = require('./parameter-definitions.cjs');

const DOC = path.join(__dirname, '..', 'docs', 'deploying.md');
const START = '<!-- parameters:start (npm run docs:parameters) -->';
const END = '<!-- parameters:end -->';

/** The document with the current table between the markers. */
function withTable(text) {
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${DOC}: the markers ${START} … ${END} are missing`);
  return `${text.slice(0, start + START.length)}\n${parameterTable()}\n${text.slice(end)}`;
}

if (require.main === module) writeFileSync(DOC, withTable(readFileSync(DOC, 'utf8')));
module.exports = { DOC, withTable };
