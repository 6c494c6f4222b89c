#!/usr/bin/env node
// `npx kubently-storage migrate …`: the CLI built into dist/ at `prepare` (npm ci, npm install).
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli.mjs', import.meta.url);
if (!existsSync(built)) {
  process.stderr.write('kubently-storage: dist/cli.mjs is missing: run `npm run build:cli` (or `npm ci`)\n');
  process.exit(1);
}
const { main } = await import(built.href);
await main();
