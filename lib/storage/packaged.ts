/**
 * Which backends this build carries. The library, the tests and `tsx` carry all of them
 * (`PACKAGED` is undefined). A packaged Lambda function carries only what the configuration it
 * was packaged with uses — each backend's drivers are most of a bundle's size —, so
 * deploy/esbuild-plugins.cjs sets `PACKAGED` at package time and leaves the rest out. A function
 * whose configuration at run time needs something left out refuses with a `ConfigError` saying
 * how to repackage, before anything is opened.
 */
import { backendsUsed, type StorageConfig } from '../config/index.js';

type Backend = StorageConfig['backend'];
type PostgresDriver = StorageConfig['postgresql']['driver'];

export interface Packaged {
  /** `storage.backend` at package time. */
  backend: Backend;
  /** The backend modules bundled: `backend`, and for `hybrid` each backend it uses. */
  backends: readonly Backend[];
  /** The PostgreSQL drivers bundled: `pg`, `neon`; `pglite` is never bundled but imported at run time. */
  postgresDrivers: readonly PostgresDriver[];
}

/** Set at package time (deploy/esbuild-plugins.cjs replaces this line); undefined: everything is here. */
export const PACKAGED: Packaged | undefined = undefined;

/** What a build packaged for `config` carries: its backend, what a hybrid uses, the PostgreSQL driver. */
export function packagedFor(config: StorageConfig): Packaged {
  const backends: Backend[] = [config.backend];
  if (config.backend === 'hybrid') backends.push(...[...backendsUsed(config)].sort());
  return {
    backend: config.backend,
    backends,
    postgresDrivers: backends.includes('postgresql') ? [config.postgresql.driver] : [],
  };
}

/** What `config` needs that `packaged` does not carry, as `ConfigError` problems; empty when it fits. */
export function packagedProblems(config: StorageConfig, packaged: Packaged | undefined = PACKAGED): string[] {
  if (packaged === undefined) return [];
  const built = `packaged for ${describePackage(packaged)}`;
  if (!packaged.backends.includes(config.backend)) {
    return [
      `storage.backend: ${config.backend} is not available in this build (${built}; repackage with STORAGE_BACKEND=${config.backend})`,
    ];
  }
  const problems: string[] = [];
  const used = backendsUsed(config);
  if (config.backend === 'hybrid') {
    for (const backend of used) {
      if (!packaged.backends.includes(backend)) {
        problems.push(
          `hybrid: uses ${backend} (routing, fallback or sync), which is not available in this build (${built}; repackage with this configuration)`,
        );
      }
    }
  }
  const driver = config.postgresql.driver;
  if (used.has('postgresql') && driver !== 'pglite' && !packaged.postgresDrivers.includes(driver)) {
    problems.push(
      `postgresql.driver: ${driver} is not available in this build (${built}; repackage with POSTGRES_DRIVER=${driver})`,
    );
  }
  return problems;
}

/** `postgresql with the pg driver`, `hybrid over redis and postgresql with the neon driver`, `memory`. */
export function describePackage(packaged: Packaged): string {
  const name = (backend: Backend) =>
    backend === 'postgresql' && packaged.postgresDrivers.length > 0
      ? `postgresql with the ${packaged.postgresDrivers.join(' and ')} driver`
      : backend;
  if (packaged.backend !== 'hybrid') return name(packaged.backend);
  const parts = packaged.backends.filter((backend) => backend !== 'hybrid');
  return parts.length === 0 ? 'hybrid' : `hybrid over ${parts.map(name).join(' and ')}`;
}
