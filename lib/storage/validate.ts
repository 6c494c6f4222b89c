/**
 * Argument validation shared by every backend. Each check throws `ValidationError` naming the
 * argument, so bad input is refused before any I/O and with the same message everywhere.
 */
import { PayloadTooLargeError, ValidationError } from '../errors.js';
import {
  EVENT_ID_DIGITS,
  MAX_GLOB_STARS,
  MAX_GLOBS_PER_TOKEN,
  MAX_JSON_DEPTH,
  MAX_NAME_BYTES,
  MAX_TTL_SECONDS,
} from '../limits.js';
import type { Json } from './types.js';

/** An event id as callers see it: the decimal digits of a per-channel counter. */
export const EVENT_ID_PATTERN = `^[0-9]{1,${EVENT_ID_DIGITS}}$`;

// C0 controls, DEL and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** A name (key, queue, channel, cluster id): 1–`MAX_NAME_BYTES` bytes of UTF-8, no control characters. */
export function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string')
    throw new ValidationError(field, `expected a string, got ${describe(value)}`);
  if (value.length === 0) throw new ValidationError(field, 'must not be empty');
  // Fast path: ASCII-only strings of at most MAX_NAME_BYTES chars are at most as many bytes.
  if (value.length > MAX_NAME_BYTES || !isAscii(value)) {
    if (!value.isWellFormed()) throw new ValidationError(field, 'is not valid UTF-8 (lone surrogate)');
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > MAX_NAME_BYTES) {
      throw new ValidationError(field, `is ${bytes} bytes of UTF-8; the limit is ${MAX_NAME_BYTES}`);
    }
  }
  if (CONTROL.test(value)) throw new ValidationError(field, 'must not contain control characters');
  return value;
}

function isAscii(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * A token's resource globs: a non-empty array of at most `MAX_GLOBS_PER_TOKEN` names, each with at
 * most `MAX_GLOB_STARS` `*`. Matching is linear in any case (lib/glob.ts); the bounds keep the
 * work per request small, whatever a token issuer sends.
 */
export function checkGlobs(field: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ValidationError(field, `expected a non-empty array of glob patterns, got ${describe(value)}`);
  }
  if (value.length > MAX_GLOBS_PER_TOKEN) {
    throw new ValidationError(field, `at most ${MAX_GLOBS_PER_TOKEN} patterns, got ${value.length}`);
  }
  return value.map((pattern, i) => {
    const glob = checkName(`${field}[${i}]`, pattern);
    let stars = 0;
    for (const char of glob) if (char === '*') stars++;
    if (stars > MAX_GLOB_STARS) {
      throw new ValidationError(
        `${field}[${i}]`,
        `has ${stars} '*'; a pattern may have at most ${MAX_GLOB_STARS}`,
      );
    }
    return glob;
  });
}

/** A TTL in seconds (> 0, finite, at most ten years), answered in whole milliseconds (at least 1). */
export function checkTtl(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ValidationError(field, `expected a finite number of seconds, got ${describe(value)}`);
  }
  if (!(value > 0)) throw new ValidationError(field, `must be greater than 0, got ${value}`);
  if (value > MAX_TTL_SECONDS) {
    throw new ValidationError(field, `must be at most ${MAX_TTL_SECONDS} seconds, got ${value}`);
  }
  return Math.max(1, Math.round(value * 1000));
}

/** A delay in seconds (≥ 0, finite, at most `max`), answered in milliseconds. */
export function checkDelay(field: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ValidationError(field, `expected a finite number of seconds, got ${describe(value)}`);
  }
  if (value < 0 || value > max)
    throw new ValidationError(field, `must be between 0 and ${max}, got ${value}`);
  return Math.round(value * 1000);
}

export function checkInt(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new ValidationError(field, `expected an integer, got ${describe(value)}`);
  }
  if (value < min || value > max)
    throw new ValidationError(field, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

export function checkBool(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean')
    throw new ValidationError(field, `expected a boolean, got ${describe(value)}`);
  return value;
}

export function checkDate(field: string, value: unknown): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new ValidationError(field, `expected a valid Date, got ${describe(value)}`);
  }
  return value;
}

/** An optional string field (user id, correlation id…): same rules as a name. */
export function checkOptionalName(field: string, value: unknown): string | undefined {
  return value === undefined ? undefined : checkName(field, value);
}

/**
 * An options object: `undefined` or a plain object whose keys are all in `allowed`.
 * Answers the object (or an empty one) so callers can destructure.
 */
export function checkOptions<K extends string>(
  field: string,
  value: unknown,
  allowed: readonly K[],
): Partial<Record<K, unknown>> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw new ValidationError(field, `expected an object, got ${describe(value)}`);
  for (const key of Object.keys(value)) {
    if (!(allowed as readonly string[]).includes(key)) {
      throw new ValidationError(
        `${field}.${key}`,
        `unknown option (allowed: ${allowed.join(', ') || 'none'})`,
      );
    }
  }
  return value as Partial<Record<K, unknown>>;
}

/**
 * Validates that `value` is plain JSON and serialises it; answers the JSON text. Throws
 * `ValidationError` naming the offending path for undefined, functions, symbols, BigInt,
 * non-finite numbers, non-plain objects (Date, Map, class instances), cycles and lone
 * surrogates, and `PayloadTooLargeError` over `maxBytes`.
 */
export function serializeJson(field: string, value: unknown, maxBytes: number): string {
  if (value === null || typeof value === 'boolean') return value === null ? 'null' : String(value);
  if (typeof value !== 'object') checkJsonScalar(field, value);
  else checkJsonTree(field, value, new Set(), 0);
  const text = JSON.stringify(value);
  if (typeof text !== 'string') throw new ValidationError(field, 'does not serialise to JSON');
  // A string's UTF-8 size is at most 3 bytes per UTF-16 unit: skip the exact count when it can't matter.
  if (text.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > maxBytes)
      throw new PayloadTooLargeError(field, `is ${bytes} bytes as JSON; the limit is ${maxBytes}`);
  }
  return text;
}

function checkJsonScalar(path: string, value: unknown): void {
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed())
        throw new ValidationError(path, 'string is not valid UTF-8 (lone surrogate)');
      return;
    case 'number':
      if (!Number.isFinite(value))
        throw new ValidationError(path, `expected a finite JSON number, got ${describe(value)}`);
      return;
    case 'boolean':
      return;
    default:
      throw new ValidationError(path, `${describe(value)} is not JSON`);
  }
}

function checkJsonTree(path: string, value: object, ancestors: Set<object>, depth: number): void {
  if (depth > MAX_JSON_DEPTH) throw new ValidationError(path, `nested deeper than ${MAX_JSON_DEPTH} levels`);
  if (ancestors.has(value)) throw new ValidationError(path, 'is circular');
  ancestors.add(value);
  if (Array.isArray(value)) {
    // Own properties besides the indices (a toJSON, a tag) would change or vanish in JSON.
    if (Object.keys(value).length !== value.length || Object.getPrototypeOf(value) !== Array.prototype) {
      throw new ValidationError(path, 'is an array with extra properties, not plain JSON');
    }
    for (let i = 0; i < value.length; i++) checkJsonNode(`${path}[${i}]`, value[i], ancestors, depth);
  } else if (isPlainObject(value)) {
    for (const key of Object.keys(value)) {
      if (!key.isWellFormed()) throw new ValidationError(path, 'has a key that is not valid UTF-8');
      checkJsonNode(`${path}.${key}`, (value as Record<string, unknown>)[key], ancestors, depth);
    }
  } else {
    throw new ValidationError(path, `${describe(value)} is not plain JSON`);
  }
  ancestors.delete(value);
}

function checkJsonNode(path: string, value: unknown, ancestors: Set<object>, depth: number): void {
  if (value === null) return;
  if (typeof value === 'object') checkJsonTree(path, value, ancestors, depth + 1);
  else checkJsonScalar(path, value);
}

/** A JSON object (not array, not null) such as session `data`; answers its JSON text. */
export function serializeJsonObject(field: string, value: unknown, maxBytes: number): string {
  if (!isPlainObject(value))
    throw new ValidationError(field, `expected a JSON object, got ${describe(value)}`);
  return serializeJson(field, value, maxBytes);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A short description of a value's type for error messages (never the value itself). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a Date';
  if (typeof value === 'object') {
    const name = Object.getPrototypeOf(value)?.constructor?.name;
    return name && name !== 'Object' ? `a ${name}` : 'an object';
  }
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN (not a number)';
    // JSON has no infinities: a number literal too large for a double (1e400) parses as one.
    if (!Number.isFinite(value)) return `a number too large to represent (${value < 0 ? '-' : ''}Infinity)`;
    return `the number ${value}`;
  }
  if (typeof value === 'bigint') return 'a BigInt';
  if (value === undefined) return 'nothing (the field is missing)';
  return `a ${typeof value}`;
}

export function parseJson(text: string): Json {
  return JSON.parse(text) as Json;
}
