/**
 * The secrets a deployed function's environment references (lib/config/secrets.ts), fetched at
 * run time with Powertools Parameters — SSM Parameter Store (SecureString decrypted) or Secrets
 * Manager — and cached for `SECRETS_MAX_AGE` seconds (default 300). A rotated secret is picked up
 * within that time without a redeploy, and at once after an operation failed to authenticate
 * (`noteFailure`). functions/runtime/storage.ts builds the storage with them and rebuilds it when
 * one changes. Nothing is loaded, and no AWS call is made, when the environment references no
 * secret (local runs, tests).
 */
import type { MiddlewareObj } from '@middy/core';
import { type SecretReference, secretReferences } from '../../lib/config/secrets.js';
import { BackendUnavailableError, ConfigError } from '../../lib/errors.js';
import { isAuthenticationFailure } from './instrument.js';
import { logger } from './logger.js';
import { captureClient } from './tracing.js';

/** Seconds a fetched secret is used before it is fetched again. */
export const SECRETS_MAX_AGE_VARIABLE = 'SECRETS_MAX_AGE';
export const DEFAULT_SECRETS_MAX_AGE_SECONDS = 300;

/** Reads one secret's current value; `force` skips the cache. */
export type SecretFetcher = (
  reference: SecretReference,
  options: { maxAge: number; force: boolean },
) => Promise<unknown>;

/** Errors of the stores that a retry meets again: the reference or the role is wrong. */
const PERMANENT =
  /AccessDenied|NotFound|ParameterVersionNotFound|InvalidKeyId|KMS|ValidationException|InvalidParameter/;

/** `SECRETS_MAX_AGE` in seconds (a whole number ≥ 0; 0 fetches on every invocation). */
export function secretsMaxAge(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[SECRETS_MAX_AGE_VARIABLE];
  if (raw === undefined || raw === '') return DEFAULT_SECRETS_MAX_AGE_SECONDS;
  const seconds = Number(raw);
  if (!Number.isInteger(seconds) || seconds < 0) {
    throw new ConfigError([
      `${SECRETS_MAX_AGE_VARIABLE}: expected a whole number of seconds ≥ 0, got ${JSON.stringify(raw)}`,
    ]);
  }
  return seconds;
}

/** Powertools' providers, their SDK clients captured by the tracer; loaded on first use. */
async function powertoolsFetcher(): Promise<SecretFetcher> {
  const [{ SSMProvider }, { SecretsProvider }, { SSMClient }, { SecretsManagerClient }] = await Promise.all([
    import('@aws-lambda-powertools/parameters/ssm'),
    import('@aws-lambda-powertools/parameters/secrets'),
    import('@aws-sdk/client-ssm'),
    import('@aws-sdk/client-secrets-manager'),
  ]);
  const ssm = new SSMProvider({ awsSdkV3Client: captureClient(new SSMClient({})) });
  const secrets = new SecretsProvider({ awsSdkV3Client: captureClient(new SecretsManagerClient({})) });
  return (reference, { maxAge, force }) =>
    reference.store === 'ssm'
      ? ssm.get(reference.id, { decrypt: true, maxAge, forceFetch: force })
      : secrets.get(reference.id, { maxAge, forceFetch: force });
}

/** The current values of `references`, by variable. */
export class RuntimeSecrets {
  private fetcher: Promise<SecretFetcher> | undefined;

  constructor(
    readonly references: readonly SecretReference[],
    private readonly maxAge: number,
    private readonly loadFetcher: () => Promise<SecretFetcher> = powertoolsFetcher,
  ) {}

  /**
   * Every referenced secret (from the cache while fresh). Throws `BackendUnavailableError`
   * (backend `secrets`) naming the variable and reference that could not be read; retryable
   * unless the store said the reference or the permission is wrong.
   */
  async values({ force = false } = {}): Promise<Record<string, string>> {
    if (this.references.length === 0) return {};
    this.fetcher ??= this.loadFetcher();
    this.fetcher.catch(() => {
      this.fetcher = undefined;
    });
    const fetch = await this.fetcher;
    const entries = await Promise.all(
      this.references.map(async (reference) => {
        let value: unknown;
        try {
          value = await fetch(reference, { maxAge: this.maxAge, force });
        } catch (error) {
          throw unreadable(reference, error);
        }
        return [reference.variable, secretText(reference, value)] as const;
      }),
    );
    return Object.fromEntries(entries);
  }
}

function secretText(reference: SecretReference, value: unknown): string {
  const text = value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value;
  // A value written from a file often ends with a newline no URL, password or hash has.
  const trimmed = typeof text === 'string' ? text.replace(/\r?\n$/, '') : undefined;
  if (!trimmed) {
    throw new BackendUnavailableError(
      'secrets',
      `${reference.variable}: ${reference.id} holds no text value`,
      {
        retryable: false,
      },
    );
  }
  return trimmed;
}

function unreadable(reference: SecretReference, error: unknown): BackendUnavailableError {
  let cause = error;
  // Powertools wraps the SDK's error: its name says what went wrong.
  while (cause instanceof Error && cause.name.endsWith('ParameterError') && cause.cause) cause = cause.cause;
  const name = cause instanceof Error ? cause.name : 'Error';
  const message = cause instanceof Error ? cause.message : String(cause);
  return new BackendUnavailableError(
    'secrets',
    `${reference.variable}: cannot read ${reference.id} from ${reference.store === 'ssm' ? 'SSM Parameter Store' : 'Secrets Manager'} (${name}: ${message})`,
    { cause: error, retryable: !PERMANENT.test(`${name} ${message}`) },
  );
}

// ---------------------------------------------------------------------------------------
// The container's secrets (module scope outlives one invocation)

let runtimeSecrets: RuntimeSecrets | undefined;
let values: Record<string, string> = {};
/** Why the secrets could not be fetched while none were: what `currentSecrets()` throws. */
let unavailable: unknown;
const listeners: Array<(changed: string[]) => void> = [];
/** Set when an operation failed to authenticate: the secrets are fetched again at once. */
let authenticationFailed = false;
/** Forced fetches are at most this frequent, so a wrong password cannot flood the secret store. */
const FORCED_REFRESH_MS = 5000;
let forcedAt = Number.NEGATIVE_INFINITY;

/** The referenced secrets' values by variable (`{}` without references); throws when they could not be fetched. */
export function currentSecrets(): Record<string, string> {
  if (unavailable !== undefined) throw unavailable;
  return values;
}

/** Calls `listener` with the variables whose values changed (not on the first fetch). */
export function onSecretsChanged(listener: (changed: string[]) => void): void {
  listeners.push(listener);
}

/** Has the secrets fetched from their store before the next invocation when `error` is a refused login. */
export function noteFailure(error: unknown): void {
  if (isAuthenticationFailure(error)) authenticationFailed = true;
}

/**
 * Fetches the secrets the environment references (from the cache while fresh; `force`: from
 * the store) and tells the listeners which changed. Nothing happens without references.
 */
export async function refreshSecrets({ force = false } = {}): Promise<void> {
  runtimeSecrets ??= new RuntimeSecrets(secretReferences(process.env), secretsMaxAge());
  if (runtimeSecrets.references.length === 0) return;
  const fetched = await runtimeSecrets.values({ force });
  const changed = Object.keys(fetched).filter((variable) => fetched[variable] !== values[variable]);
  if (changed.length === 0) return;
  const first = Object.keys(values).length === 0;
  values = fetched;
  if (first) return;
  logger.info('secrets changed', { variables: changed });
  for (const listener of listeners) listener(changed);
}

/**
 * Middleware for every function that uses the storage, before it does: the referenced secrets
 * (a cache check on most invocations); after an operation failed to authenticate, fetched again
 * from the store at once, so the next invocation uses rotated credentials.
 */
export function storageSecrets<Event, Result>(): MiddlewareObj<Event, Result> {
  const afterAuthenticationFailure = async () => {
    if (!authenticationFailed) return;
    authenticationFailed = false;
    if (Date.now() - forcedAt < FORCED_REFRESH_MS) return;
    forcedAt = Date.now();
    try {
      await refreshSecrets({ force: true });
    } catch (error) {
      logger.error('secrets could not be fetched again after an authentication failure', { error });
    }
  };
  return {
    // A failure is not thrown here but by `currentSecrets()` when the storage is built, so each
    // handler answers it its own way (a 503, a denied connection, an error frame).
    before: async () => {
      try {
        await refreshSecrets();
        unavailable = undefined;
      } catch (error) {
        // Values fetched before are kept (the store may be throttling); without any, nothing can serve.
        if (Object.keys(values).length > 0)
          logger.warn('secrets not refreshed: the previous values stay', { error });
        else unavailable = error;
      }
    },
    after: afterAuthenticationFailure,
    onError: async (request) => {
      noteFailure(request.error);
      await afterAuthenticationFailure();
    },
  };
}
