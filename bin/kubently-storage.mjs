#!/usr/bin/env node
// `npx kubently-storage migrate …`: the CLI is TypeScript, loaded through tsx's loader.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../lib/cli.ts');
await main();
