/**
 * Builds the `kubently-storage` command into dist/cli.mjs (run by `npm run build:cli`, and at
 * `prepare`, so `npm ci` leaves it ready): one ES module, dependencies left to node_modules,
 * so the command starts without compiling TypeScript on every run.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = join(import.meta.dirname, '..');
/** The migrator finds `migrations/` relative to its own file: from dist/ (and dist/chunks/ never holds it) one level up. */
const MIGRATIONS_FROM_SOURCE = "new URL('../../../migrations/', import.meta.url)";
const MIGRATIONS_FROM_DIST = "new URL('../migrations/', import.meta.url)";

await build({
  entryPoints: [join(root, 'lib/cli.ts')],
  outdir: join(root, 'dist'),
  entryNames: '[name]',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  // Dependencies are bundled too (resolving and reading hundreds of files is most of a start),
  // and what the command only imports on demand (drivers) is split into chunks loaded then.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // PGlite finds its WebAssembly beside its own files; pg-native is optional.
  external: ['@electric-sql/pglite', '@electric-sql/pglite/*', 'pg-native'],
  // Bundled CommonJS modules may call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  logLevel: 'warning',
  plugins: [
    {
      name: 'migrations-dir',
      setup(b) {
        b.onLoad({ filter: /lib[\\/]storage[\\/]postgresql[\\/]migrate\.ts$/ }, async (args) => {
          const source = await readFile(args.path, 'utf8');
          if (!source.includes(MIGRATIONS_FROM_SOURCE))
            throw new Error(`${args.path}: MIGRATIONS_DIR no longer reads ${MIGRATIONS_FROM_SOURCE}`);
          return { contents: source.replace(MIGRATIONS_FROM_SOURCE, MIGRATIONS_FROM_DIST), loader: 'ts' };
        });
      },
    },
  ],
});
