import { globMatcher } from '../glob.js';
import type { StorageConfig } from './schema.js';

export { applyEnv, configFromEnv, ENV_FIELDS } from './env.js';
export {
  CONFIG_FILE_VARIABLE,
  ConfigFileSchema,
  configFileLocation,
  DEFAULT_CONFIG_FILE,
  FILE_FIELDS,
  type LoadConfigOptions,
  loadConfig,
  type ParsedConfigFile,
  parseConfigDocument,
  parseConfigFile,
} from './file.js';
export {
  backendsUsed,
  type DataBackend,
  DEFAULT_REPLICA_WAIT_SECONDS,
  resolveConfig,
  type StorageConfig,
  type StorageConfigInput,
  StorageConfigSchema,
  schemaProblems,
} from './schema.js';
export {
  referenceProblem,
  referenceStore,
  referenceVariable,
  SECRET_VARIABLES,
  type SecretReference,
  type SecretVariable,
  secretReferences,
} from './secrets.js';
export { type ConfigDocument, readConfigDocument } from './yaml.js';

/** Events kept on `channel`: the first `events.maxHistoryByChannel` glob it matches, else `events.maxHistory`. */
export function maxHistoryFor(config: StorageConfig): (channel: string) => number {
  const rules = Object.entries(config.events.maxHistoryByChannel).map(
    ([pattern, limit]) => [globMatcher(pattern), limit] as const,
  );
  if (rules.length === 0) return () => config.events.maxHistory;
  return (channel) => rules.find(([matches]) => matches(channel))?.[1] ?? config.events.maxHistory;
}
