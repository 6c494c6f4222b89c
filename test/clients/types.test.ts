/** The TypeScript client's types are what openapi-typescript generates from openapi.yaml today. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { clientTypesFile, renderClientTypes } from '../../tools/client-types.js';

describe('clients/typescript types', () => {
  it('api-types.ts is what `npm run client-types` generates from openapi.yaml', async () => {
    expect(readFileSync(clientTypesFile, 'utf8')).toBe(await renderClientTypes());
  });
});
