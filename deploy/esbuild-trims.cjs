/**
 * esbuild plugins that make each function's bundle smaller and quicker to import without
 * changing what it does (deploy/esbuild-plugins.cjs adds them to every build):
 *
 * - Error class names: the bundle is minified without `keepNames` (which wrapped every function
 *   and class of every module in a naming call: about 28 KB and the calls' cost at import), and
 *   only modules that declare an Error subclass keep their names. Logs and callers read error
 *   names (`this.name = new.target.name` in lib/errors.ts, redis-errors' `constructor.name`
 *   that the Redis backend compares with 'ReplyError'); stack frames get their names from the
 *   source map.
 * - `debug`: ioredis' only use is its opt-in `DEBUG=ioredis:*` tracing, off in a function; a
 *   stand-in that is never enabled replaces it (with `supports-color`, `ms` and their import-time
 *   probing of the terminal).
 * - middy's `node:stream/web`: imported for `instanceof ReadableStream` on streamed responses,
 *   which these functions do not use; loading it at import costs more than the rest of middy. The
 *   stand-in answers the same `instanceof`, loading web streams only when it is asked.
 * - `ws`: the Neon driver's WebSocket needs the client class only; its server, stream wrapper and
 *   the index that attaches them are left out.
 * - `pg`'s native client: it needs `pg-native`, which a package never has (its `require` fails,
 *   so `pg.native` is null and `NODE_PG_FORCE_NATIVE` fails at import); a stand-in failing the
 *   same way replaces it.
 * - `@neondatabase/serverless`: one prebuilt file of lazily initialised modules (its pg copy and
 *   browser shims), which esbuild cannot drop as it cannot tell the wrappers are pure. Marking
 *   them pure lets it drop the modules nothing reaches; the Buffer polyfill, used only where
 *   there is no global `Buffer` (never in Node), becomes unreachable (about 30 KB in all).
 */
const { readFileSync } = require('node:fs');
const path = require('node:path');
const { transformSync } = require('esbuild');

const root = path.join(__dirname, '..');
const ERROR_CLASS = /\bclass\s+[\w$]+\s+extends\s+[\w$.]*Error\b/;
const SOURCE = /\.(?:[cm]?js|ts)$/;

/** tsconfig.json's compiler options, which decide how esbuild compiles a TypeScript module. */
function tsconfigRaw() {
  return JSON.parse(readFileSync(path.join(root, 'tsconfig.json'), 'utf8'));
}

/** `source` of `file` compiled with `keepNames`, for a module declaring an Error subclass. */
function withErrorNames(source, file, build, tsconfig) {
  const { code } = transformSync(source, {
    loader: file.endsWith('.ts') ? 'ts' : 'js',
    keepNames: true,
    target: build.initialOptions.target,
    platform: 'node',
    sourcemap: 'inline',
    sourcefile: file,
    tsconfigRaw: tsconfig,
  });
  return code;
}

const errorClassNames = {
  name: 'kubently-error-class-names',
  setup(build) {
    const tsconfig = tsconfigRaw();
    build.onLoad({ filter: SOURCE }, (args) => {
      if (args.namespace !== 'file') return undefined;
      const source = readFileSync(args.path, 'utf8');
      if (!ERROR_CLASS.test(source)) return undefined;
      return {
        contents: withErrorNames(source, args.path, build, tsconfig),
        loader: 'js',
        resolveDir: path.dirname(args.path),
      };
    });
  },
};

const DEBUG_STAND_IN = `
function createDebug(namespace) {
  const debug = () => {};
  debug.namespace = namespace;
  debug.enabled = false;
  debug.destroy = () => false;
  debug.extend = (sub, delimiter = ':') => createDebug(namespace + delimiter + sub);
  debug.log = () => {};
  return debug;
}
createDebug.enabled = () => false;
createDebug.enable = () => {};
createDebug.disable = () => '';
createDebug.default = createDebug;
module.exports = createDebug;
`;

const debugStandIn = {
  name: 'kubently-debug-stand-in',
  setup(build) {
    build.onResolve({ filter: /^debug$/ }, () => ({ path: 'debug', namespace: 'debug-stand-in' }));
    build.onLoad({ filter: /.*/, namespace: 'debug-stand-in' }, () => ({
      contents: DEBUG_STAND_IN,
      loader: 'js',
    }));
  },
};

const MIDDY = `${path.sep}node_modules${path.sep}@middy${path.sep}core${path.sep}`;
const WEB_STREAMS_STAND_IN = `
import { createRequire } from 'node:module';
const load = () => createRequire(import.meta.url)('node:stream/web').ReadableStream;
export const ReadableStream = { [Symbol.hasInstance]: (value) => value instanceof load() };
`;

const middyWebStreams = {
  name: 'kubently-middy-web-streams',
  setup(build) {
    build.onResolve({ filter: /^node:stream\/web$/ }, (args) =>
      args.importer.includes(MIDDY) ? { path: 'node:stream/web', namespace: 'middy-web-streams' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'middy-web-streams' }, () => ({
      contents: WEB_STREAMS_STAND_IN,
      loader: 'js',
    }));
  },
};

const WS_CLIENT = path.join(root, 'node_modules/ws/lib/websocket.js');

const wsClientOnly = {
  name: 'kubently-ws-client-only',
  setup(build) {
    build.onResolve({ filter: /^ws$/ }, (args) =>
      args.importer.includes(`${path.sep}node_modules${path.sep}`) ? undefined : { path: WS_CLIENT },
    );
  },
};

const regexFor = (file) => new RegExp(`^${file.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}$`);

const PG_INDEX = path.join(root, 'node_modules/pg/lib/index.js');
const PG_NATIVE_STAND_IN = `
const error = new Error("Cannot find module 'pg-native'");
error.code = 'MODULE_NOT_FOUND';
throw error;
`;

const pgNativeStandIn = {
  name: 'kubently-pg-native-stand-in',
  setup(build) {
    build.onResolve({ filter: /^\.\/native$/ }, (args) =>
      args.importer === PG_INDEX ? { path: 'pg-native', namespace: 'pg-native-stand-in' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'pg-native-stand-in' }, () => ({
      contents: PG_NATIVE_STAND_IN,
      loader: 'js',
    }));
  },
};

const NEON_INDEX = path.join(root, 'node_modules/@neondatabase/serverless/index.mjs');
/** The prebuilt file's lazy module wrappers (esbuild's `__esm` and `__commonJS`, minified). */
const NEON_WRAPPERS = ['var V=(r,e,t)=>()=>{if(t)throw t[0];try{', 'var T=(r,e)=>()=>{try{return e||r('];
const NEON_BUFFER_FALLBACK = /(globalThis\.Buffer:)[\w$]+\(\)\.Buffer\b/;

/** The Neon driver's file with its module wrappers marked pure, or undefined if it is not the one known. */
function trimNeon(source) {
  if (!NEON_WRAPPERS.every((wrapper) => source.includes(wrapper))) return undefined;
  if (!NEON_BUFFER_FALLBACK.test(source)) return undefined;
  return source
    .replace(NEON_BUFFER_FALLBACK, '$1globalThis.Buffer')
    .replace(/(\bvar [\w$,]+=)([TV]\()/g, '$1/* @__PURE__ */$2');
}

const neonPureModules = {
  name: 'kubently-neon-pure-modules',
  setup(build) {
    const tsconfig = tsconfigRaw();
    build.onLoad({ filter: regexFor(NEON_INDEX) }, (args) => {
      const trimmed = trimNeon(readFileSync(args.path, 'utf8'));
      if (trimmed === undefined) return undefined;
      const contents = ERROR_CLASS.test(trimmed)
        ? withErrorNames(trimmed, args.path, build, tsconfig)
        : trimmed;
      return { contents, loader: 'js', resolveDir: path.dirname(args.path) };
    });
  },
};

/** The plugins, in the order to add them: after those that replace whole modules. */
function trimPlugins() {
  return [middyWebStreams, debugStandIn, wsClientOnly, pgNativeStandIn, neonPureModules, errorClassNames];
}

module.exports = { trimPlugins, trimNeon, ERROR_CLASS };
