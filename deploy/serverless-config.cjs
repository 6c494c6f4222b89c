/**
 * Deploy-time settings for serverless.yml, from the same configuration the functions load
 * (lib/config: config.yaml or STORAGE_CONFIG, then the environment), so `serverless package`
 * and `deploy` refuse an invalid configuration with the same message the functions would give,
 * and the cleanup schedule follows `ttl.enabled` / `ttl.interval`.
 *
 * serverless.yml: `custom.storage: ${file(./deploy/serverless-config.cjs)}`. Serverless loads
 * this file with require(), so lib/config (TypeScript, ESM) is bundled on the fly with esbuild.
 * deploy/esbuild-plugins.cjs reads the same configuration to decide what each bundle carries.
 */
const { buildSync } = require('esbuild');
const path = require('node:path');

const root = path.join(__dirname, '..');
let configModule;

/**
 * lib/config, and what deploy-time code reads of the project's TypeScript (lib/storage/packaged.ts
 * for deploy/esbuild-plugins.cjs; lib/metrics.ts and the routes table for deploy/), bundled once
 * per process.
 */
function loadConfigModule() {
  if (configModule === undefined) {
    const { outputFiles } = buildSync({
      stdin: {
        contents: [
          "export * from './lib/config/index.ts';",
          "export * from './lib/storage/packaged.ts';",
          "export * from './lib/metrics.ts';",
          "export { routes } from './functions/runtime/routes.ts';",
        ].join(' '),
        resolveDir: root,
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      write: false,
      logLevel: 'silent',
    });
    const module = { exports: {} };
    new Function('module', 'exports', 'require', outputFiles[0].text)(module, module.exports, require);
    configModule = module.exports;
  }
  return configModule;
}

/**
 * The configuration as the functions will load it (the project root's config.yaml or
 * STORAGE_CONFIG, then the environment), or an error whose message is all an operator needs.
 * `env`: the functions' environment — a deployed stage's (deploy/parameters.cjs
 * `packagingEnvironment`: its parameters, stand-ins for the secrets fetched at run time), else
 * the shell's.
 */
function packageConfig(env = process.env) {
  const lib = loadConfigModule();
  try {
    // Packaged at the same relative path and read from there by the functions (serverless.yml):
    // a file outside the project would not be in the package.
    // (`serverless offline` runs the functions from here: any path works there.)
    const named = env.STORAGE_CONFIG;
    if (named && !process.argv.includes('offline')) {
      const relative = path.relative(root, path.resolve(root, named));
      if (path.isAbsolute(named) || relative.startsWith('..') || path.isAbsolute(relative)) {
        throw Object.assign(new Error('STORAGE_CONFIG'), {
          problems: [
            `STORAGE_CONFIG: must be a path inside the project, relative to its root, when packaging (it is packaged at that path and the functions read it there), got ${JSON.stringify(named)}`,
          ],
        });
      }
    }
    return lib.loadConfig({ cwd: root, env });
  } catch (error) {
    if (error && Array.isArray(error.problems)) {
      // Serverless prints `stack` when it has one: the message is all an operator needs.
      const message = `invalid storage configuration:\n  - ${error.problems.join('\n  - ')}`;
      const refusal = new Error(message);
      refusal.stack = message;
      throw refusal;
    }
    throw error;
  }
}

/** The environment a package is built for: the deployed stage's, or (local stages, tests) undefined: the shell's. */
async function packagingEnvironment(resolveConfigurationProperty) {
  if (!resolveConfigurationProperty) return undefined;
  return (await resolveConfigurationProperty(['custom', 'deploy', 'packagingEnvironment'])) ?? undefined;
}

module.exports = async ({ resolveConfigurationProperty } = {}) => {
  const config = packageConfig(await packagingEnvironment(resolveConfigurationProperty));
  // EventBridge rates are whole minutes (at least one).
  const minutes = Math.max(1, Math.ceil(config.ttl.interval / 60));
  return {
    cleanupEnabled: config.ttl.enabled,
    cleanupRate: `rate(${minutes} ${minutes === 1 ? 'minute' : 'minutes'})`,
  };
};
// For deploy/esbuild-plugins.cjs, which packages the functions for this configuration.
module.exports.loadConfigModule = loadConfigModule;
module.exports.packageConfig = packageConfig;
