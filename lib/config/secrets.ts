/**
 * Secrets by reference. A deployed function's environment names its secrets and never holds
 * them: for each variable of `SECRET_VARIABLES`, `<VARIABLE>_SECRET` is a reference to where the
 * value lives, read at run time (functions/runtime/secrets.ts) —
 *
 * - an SSM Parameter Store parameter (a SecureString is decrypted): its name (`/kubently/prod/
 *   database-url`) or ARN (`arn:aws:ssm:us-east-1:123456789012:parameter/kubently/prod/database-url`);
 * - a Secrets Manager secret: its ARN (`arn:aws:secretsmanager:us-east-1:123456789012:secret:name-AbCdEf`),
 *   the whole secret string being the value.
 *
 * Locally the variables themselves hold the values. The deployment (deploy/) grants each function
 * read access to exactly the references in its environment.
 */
import { ConfigError } from '../errors.js';

/** The variables of `ENV_FIELDS` that hold secrets. */
export const SECRET_VARIABLES = [
  'DATABASE_URL',
  'REDIS_URL',
  'REDIS_PASSWORD',
  'BOOTSTRAP_TOKEN_HASH',
] as const;
export type SecretVariable = (typeof SECRET_VARIABLES)[number];

/** `DATABASE_URL` → `DATABASE_URL_SECRET`. */
export const referenceVariable = (variable: SecretVariable): string => `${variable}_SECRET`;

export interface SecretReference {
  /** The configuration variable it supplies, e.g. `DATABASE_URL`. */
  variable: SecretVariable;
  store: 'ssm' | 'secretsmanager';
  /** The parameter name or ARN, or the secret's ARN, as given. */
  id: string;
}

const SSM_NAME = /^(\/[A-Za-z0-9_.\-/]+)$/;
const SSM_ARN = /^arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter\/[A-Za-z0-9_.\-/]+$/;
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;

/** Why `reference` is not a usable reference, or undefined when it is. */
export function referenceProblem(reference: string): string | undefined {
  if (SSM_NAME.test(reference) || SSM_ARN.test(reference) || SECRET_ARN.test(reference)) return undefined;
  // The value is not repeated: a secret given where its reference belongs would be printed.
  return (
    'expected an SSM parameter name (/path/name), an SSM parameter ARN or a Secrets Manager secret ARN ' +
    '(arn:aws:secretsmanager:<region>:<account>:secret:<name>), got something else (not shown: it may be a secret)'
  );
}

/** The store a valid reference points into. */
export function referenceStore(reference: string): SecretReference['store'] {
  return SECRET_ARN.test(reference) ? 'secretsmanager' : 'ssm';
}

/**
 * The references in `env` (`<VARIABLE>_SECRET`, set and not empty). Throws one `ConfigError`
 * naming every malformed one, and every variable given both as a value and as a reference.
 */
export function secretReferences(env: NodeJS.ProcessEnv): SecretReference[] {
  const references: SecretReference[] = [];
  const problems: string[] = [];
  for (const variable of SECRET_VARIABLES) {
    const name = referenceVariable(variable);
    const id = env[name];
    if (id === undefined || id === '') continue;
    const problem = referenceProblem(id);
    if (problem) problems.push(`${name}: ${problem}`);
    else if (env[variable]) problems.push(`${name}: ${variable} is set too; give the value or the reference`);
    else references.push({ variable, store: referenceStore(id), id });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return references;
}
