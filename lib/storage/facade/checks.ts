/** Argument checks the facade's stores share that are not general enough for validate.ts. */
import { ValidationError } from '../../errors.js';
import { MAX_BATCH_ITEMS, MAX_TTL_SECONDS } from '../../limits.js';
import { SCOPES, type Scope } from '../types.js';
import { checkDate, describe } from '../validate.js';

/** An absolute deadline: any past moment, or at most `MAX_TTL_SECONDS` ahead (like a TTL). */
export function checkDeadline(field: string, value: unknown): number {
  const ms = checkDate(field, value).getTime();
  if (ms > Date.now() + MAX_TTL_SECONDS * 1000) {
    throw new ValidationError(field, `must be at most ${MAX_TTL_SECONDS} seconds ahead`);
  }
  return ms;
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** An ISO-8601 date and time with its offset, as `TokenInfo.expiresAt` is written; answers epoch ms. */
export function checkIsoTime(field: string, value: unknown): number {
  if (typeof value !== 'string' || !ISO_TIME.test(value) || Number.isNaN(Date.parse(value))) {
    throw new ValidationError(
      field,
      `expected an ISO-8601 time such as 2030-01-01T00:00:00.000Z, got ${describe(value)}`,
    );
  }
  return Date.parse(value);
}

export function checkBatch(field: string, value: unknown): asserts value is unknown[] {
  if (!Array.isArray(value)) throw new ValidationError(field, `expected an array, got ${describe(value)}`);
  if (value.length > MAX_BATCH_ITEMS)
    throw new ValidationError(field, `at most ${MAX_BATCH_ITEMS} items, got ${value.length}`);
}

export function checkScopes(value: unknown): Scope[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ValidationError('scopes', `expected a non-empty array of scopes, got ${describe(value)}`);
  }
  for (const [i, scope] of value.entries()) {
    if (!(SCOPES as readonly unknown[]).includes(scope)) {
      throw new ValidationError(
        `scopes[${i}]`,
        `unknown scope ${JSON.stringify(scope)} (allowed: ${SCOPES.join(', ')})`,
      );
    }
  }
  return [...new Set(value as Scope[])];
}
