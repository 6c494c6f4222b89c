/**
 * The Lua programs ship as strings in scripts.generated.ts: it must be what `npm run lua`
 * makes of lib/storage/redis/lua/, or a bundle would run other scripts than the files say.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { scripts } from '../../lib/storage/redis/scripts.js';
import { generatedFile, renderLuaModule } from '../../tools/generate-lua.js';

describe('generated Lua module', () => {
  it('scripts.generated.ts is what `npm run lua` generates from lib/storage/redis/lua', () => {
    expect(readFileSync(generatedFile, 'utf8')).toBe(renderLuaModule());
  });

  it('every script definition has a program, with its includes expanded and no header left', () => {
    for (const [name, script] of Object.entries(scripts)) {
      expect(script.lua, name).not.toMatch(/^--\[\[|@include|\{\{\w+\}\}/m);
      expect(script.lua.length, name).toBeGreaterThan(0);
    }
  });
});
