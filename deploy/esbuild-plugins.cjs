/**
 * esbuild plugins for serverless-esbuild (serverless.yml `custom.esbuild.plugins`): each function
 * is bundled for the configuration it is packaged with (deploy/serverless-config.cjs loads it as
 * the functions will), so it carries no more than that configuration uses.
 *
 * - Backends: the storage backends (lib/storage/<backend>/index.ts) and PostgreSQL drivers
 *   (`pg`; `@neondatabase/serverless` with `ws`) the configuration does not use are replaced by
 *   stand-ins that throw a `ConfigError`, and lib/storage/packaged.ts records what the build
 *   carries, so `createStorage()` refuses a configuration needing anything else with a message
 *   saying how to repackage (and `GET /health` answers it).
 * - Configuration file: YAML is read here, not at run time. lib/config/yaml.ts becomes the
 *   document of the file read at package time (values with `${VAR}` references unresolved, and
 *   lines), which the function uses when the file it finds has the same content; the references
 *   are still resolved from the function's environment at run time.
 * - Trims (deploy/esbuild-trims.cjs): error class names kept without `keepNames`, ioredis'
 *   `debug` and middy's web streams replaced by stand-ins, `ws`, pg's native client and the Neon driver trimmed to what
 *   a function reaches.
 *
 * `module.exports()` answers the plugin list for the configuration in place; `backendPlugins(config,
 * document)` builds it for a given one (tests).
 */
const { createHash } = require('node:crypto');
const { existsSync, readFileSync } = require('node:fs');
const path = require('node:path');
const { buildSync } = require('esbuild');
const { trimPlugins } = require('./esbuild-trims.cjs');
const { loadConfigModule, packageConfig } = require('./serverless-config.cjs');

const root = path.join(__dirname, '..');
const ERRORS = path.join(root, 'lib/errors.ts');
const PACKAGED_FILE = path.join(root, 'lib/storage/packaged.ts');
const PACKAGED_LINE = 'export const PACKAGED: Packaged | undefined = undefined;';
const YAML_FILE = path.join(root, 'lib/config/yaml.ts');
const BACKEND_FILES = {
  memory: path.join(root, 'lib/storage/memory/index.ts'),
  redis: path.join(root, 'lib/storage/redis/index.ts'),
  postgresql: path.join(root, 'lib/storage/postgresql/index.ts'),
  hybrid: path.join(root, 'lib/storage/hybrid/index.ts'),
};
const DRIVER_PACKAGES = { pg: ['pg'], neon: ['@neondatabase/serverless', 'ws'] };
/** Packages only deployed stages use (see `backendPlugins`). */
const DEPLOYED_ONLY = /^@aws-lambda-powertools\/(tracer|parameters\/ssm|parameters\/secrets)$/;

/** The runtime names `file` exports (its stand-in must export the same). */
function exportsOf(file) {
  const { metafile } = buildSync({
    entryPoints: [file],
    bundle: false,
    write: false,
    metafile: true,
    format: 'esm',
    platform: 'node',
    outdir: path.join(root, '.esbuild-exports'),
    logLevel: 'silent',
  });
  return Object.values(metafile.outputs)[0].exports;
}

const regexFor = (file) => new RegExp(`^${file.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}$`);

/**
 * The plugins for a build packaged for `config`; `document` is the configuration file as read
 * at package time (`{ sha256, document }`), or undefined when there is none. `deployed`: the
 * build is for a deployed stage (deploy/parameters.cjs) and carries what only AWS uses:
 * Powertools' Tracer (about 120 KB with aws-xray-sdk-core) and Parameters (secrets fetched at
 * run time). A local stage's build leaves them out: it never loads them.
 */
function backendPlugins(config, document, { deployed = false } = {}) {
  const lib = loadConfigModule();
  const packaged = lib.packagedFor(config);
  // createStorage() refuses a configuration this build cannot serve before reaching a stand-in
  // (lib/storage/packaged.ts); these messages are for a caller that skips it.
  const unavailable = (what) =>
    `${what} is not available in this build (packaged for ${lib.describePackage(packaged)}; repackage with the configuration that needs it)`;
  const standIn = (what, names) =>
    [
      `import { ConfigError } from ${JSON.stringify(ERRORS)};`,
      `const unavailable = () => { throw new ConfigError([${JSON.stringify(unavailable(what))}]); };`,
      ...names.map((name) => `export const ${name} = unavailable;`),
    ].join('\n');

  return [
    {
      name: 'kubently-packaged-backends',
      setup(build) {
        build.onLoad({ filter: regexFor(PACKAGED_FILE) }, () => {
          const source = readFileSync(PACKAGED_FILE, 'utf8');
          if (!source.includes(PACKAGED_LINE)) {
            throw new Error(
              `deploy/esbuild-plugins.cjs: ${PACKAGED_FILE} no longer has the line "${PACKAGED_LINE}"`,
            );
          }
          const line = `export const PACKAGED: Packaged | undefined = ${JSON.stringify(packaged)};`;
          return { contents: source.replace(PACKAGED_LINE, line), loader: 'ts' };
        });
        for (const [backend, file] of Object.entries(BACKEND_FILES)) {
          if (packaged.backends.includes(backend)) continue;
          build.onLoad({ filter: regexFor(file) }, () => ({
            contents: standIn(`the ${backend} backend`, exportsOf(file)),
            loader: 'js',
            resolveDir: path.dirname(file),
          }));
        }
        const dropped = Object.entries(DRIVER_PACKAGES)
          .filter(([driver]) => !packaged.postgresDrivers.includes(driver))
          .flatMap(([driver, packages]) => packages.map((name) => [driver, name]));
        for (const [driver, name] of dropped) {
          build.onResolve({ filter: regexFor(name) }, () => ({
            path: name,
            namespace: `unpackaged-${driver}`,
          }));
          // Imported dynamically when a connection opens: the import itself fails, clearly.
          build.onLoad({ filter: /.*/, namespace: `unpackaged-${driver}` }, () => ({
            contents: [
              `import { ConfigError } from ${JSON.stringify(ERRORS)};`,
              `throw new ConfigError([${JSON.stringify(unavailable(`the ${driver} PostgreSQL driver`))}]);`,
            ].join('\n'),
            loader: 'js',
            resolveDir: root,
          }));
        }
      },
    },
    {
      name: 'kubently-deployed-only',
      setup(build) {
        if (deployed) return;
        build.onResolve({ filter: DEPLOYED_ONLY }, (args) => ({
          path: args.path,
          namespace: 'deployed-only',
        }));
        // Imported only where tracing is on or secrets are referenced (functions/runtime/tracing.ts,
        // functions/runtime/secrets.ts), never in a local stage: say why it is missing.
        build.onLoad({ filter: /.*/, namespace: 'deployed-only' }, (args) => ({
          contents: `throw new Error(${JSON.stringify(`${args.path} is not in this build: it was packaged for a local stage`)});`,
          loader: 'js',
        }));
      },
    },
    {
      name: 'kubently-packaged-config-file',
      setup(build) {
        build.onLoad({ filter: regexFor(YAML_FILE) }, () => ({
          contents: packagedDocumentModule(document),
          loader: 'js',
          resolveDir: path.dirname(YAML_FILE),
        }));
      },
    },
    ...trimPlugins(),
  ];
}

/** lib/config/yaml.ts for a build: the packaged document, for a file of the same content only. */
function packagedDocumentModule(document) {
  return `import { createHash } from 'node:crypto';
const packaged = ${JSON.stringify(document ?? null)};
export function readConfigDocument(text, source) {
  if (packaged !== null && createHash('sha256').update(text).digest('hex') === packaged.sha256) {
    return packaged.document;
  }
  const problem = packaged === null
    ? \`\${source}: this function was packaged without a configuration file and reads none at run time (repackage with \${source} in place)\`
    : \`\${source}: differs from the file this function was packaged with; configuration files are read at package time (repackage with this one)\`;
  return { value: null, lines: {}, problems: [problem] };
}
`;
}

/** The configuration file the functions will read, as `{ sha256, document }`, or undefined. */
function packagedDocument(env = process.env) {
  const lib = loadConfigModule();
  const { path: file, source } = lib.configFileLocation({ cwd: root, env });
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  return {
    sha256: createHash('sha256').update(text).digest('hex'),
    document: lib.readConfigDocument(text, source),
  };
}

/**
 * serverless-esbuild calls this with the serverless instance: a deployed stage is packaged for
 * the environment its parameters give (deploy/parameters.cjs), a local one for the shell's.
 */
module.exports = (serverless) => {
  const deploy = serverless?.service?.custom?.deploy;
  const env = deploy?.packagingEnvironment ?? process.env;
  return backendPlugins(packageConfig(env), packagedDocument(env), { deployed: deploy?.local === false });
};
module.exports.backendPlugins = backendPlugins;
module.exports.packagedDocument = packagedDocument;
