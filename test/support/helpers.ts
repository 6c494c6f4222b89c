/** Small helpers shared by the conformance suite. */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { ValidationError } from '../../lib/errors.js';

/** A name no other test (or earlier run) uses: tests own their data. */
export function name(label = 'n'): string {
  return `${label}-${randomBytes(5).toString('hex')}`;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The error `call` fails with, whether it rejects or (wrongly, for a Promise-returning method)
 * throws synchronously; fails the test when `call` succeeds.
 */
export async function failure(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  expect.fail('expected the call to fail, but it succeeded');
}

/**
 * `field` (e.g. `options.ttl`, `entries[2].key`) names `argument` when one of its segments is
 * `argument`: `ttl` matches `ttl`, `options.ttl`, but not `ttlx`.
 */
export function fieldNames(field: string, argument: string): boolean {
  const escaped = argument.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[.\\]])${escaped}($|[.[])`).test(field);
}

/**
 * Asserts `call` fails with a `ValidationError` whose `field` names `argument` (any of them when
 * several are acceptable, e.g. `nx` together with `xx` may blame either, or the options object).
 */
export async function expectInvalid(
  call: () => unknown,
  argument: string | string[],
  label = '',
): Promise<ValidationError> {
  const prefix = label ? `${label}: ` : '';
  let error: unknown;
  try {
    await call();
  } catch (caught) {
    error = caught;
  }
  if (error === undefined) expect.fail(`${prefix}expected a ValidationError, but the call succeeded`);
  expect(error, `${prefix}${String(error)}`).toBeInstanceOf(ValidationError);
  const field = (error as ValidationError).field;
  const expected = Array.isArray(argument) ? argument : [argument];
  expect(
    expected.some((a) => fieldNames(field, a)),
    `${prefix}field "${field}" should name ${expected.join(' or ')}`,
  ).toBe(true);
  return error as ValidationError;
}

/** Asserts `call` fails with an instance of `type`. */
export async function expectError<E>(
  call: () => unknown,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  const error = await failure(call);
  expect(error, String(error)).toBeInstanceOf(type);
  return error as E;
}

/** Milliseconds since the epoch of an ISO-8601 UTC time, failing the test when it is not one. */
export function isoMs(value: unknown): number {
  expect(value).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  return Date.parse(value as string);
}

/** Adjacent pairs of `items`. */
export function pairs<T>(items: readonly T[]): [T, T][] {
  return items.slice(1).map((item, i) => [items[i] as T, item]);
}
