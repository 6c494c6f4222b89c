/**
 * Request validation errors in plain words. TypeBox's own messages speak of its types
 * ("Expected union value", "Expected number" for a number too large to be finite); these name
 * what the field takes and what came instead, e.g. `body.ttl: expected a number greater than 0
 * or null, got the number -1`.
 */
import type { TSchema } from '@sinclair/typebox';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors';
import { describe } from '../../lib/storage/validate.js';

/** `body` + TypeBox's JSON pointer (`/resources/0`) as a field name: `body.resources[0]`. */
export function fieldPath(root: string, pointer: string): string {
  let path = root;
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    path += /^(0|[1-9][0-9]*)$/.test(segment) ? `[${segment}]` : `.${segment}`;
  }
  return path;
}

/** One sentence (without the field name) saying what was expected and what came instead. */
export function describeSchemaError(error: ValueError): string {
  const { schema, value } = error;
  const got = `got ${shown(value)}`;
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return `is required (${expected(schema)})`;
    case ValueErrorType.ObjectAdditionalProperties:
    case ValueErrorType.IntersectUnevaluatedProperties: {
      const allowed = Object.keys((schema.properties ?? {}) as object);
      return `unknown field (allowed: ${allowed.join(', ') || 'none'})`;
    }
    case ValueErrorType.NumberExclusiveMinimum:
    case ValueErrorType.IntegerExclusiveMinimum:
      return `must be greater than ${schema.exclusiveMinimum}, ${got}`;
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return `must be at least ${schema.minimum}, ${got}`;
    case ValueErrorType.NumberExclusiveMaximum:
    case ValueErrorType.IntegerExclusiveMaximum:
      return `must be less than ${schema.exclusiveMaximum}, ${got}`;
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMaximum:
      return `must be at most ${schema.maximum}, ${got}`;
    case ValueErrorType.StringMinLength:
      return schema.minLength === 1
        ? 'must not be empty'
        : `must be at least ${schema.minLength} characters long, got ${(value as string).length}`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${schema.maxLength} characters long, got ${(value as string).length}`;
    case ValueErrorType.ArrayMinItems:
      return `must have at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}, got ${(value as unknown[]).length}`;
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${schema.maxItems} items, got ${(value as unknown[]).length}`;
    case ValueErrorType.ArrayUniqueItems:
      return 'must not repeat an item';
    default:
      // A wrong type (number, integer, string, boolean, array, object, null, a literal, a union) or
      // a pattern: what the schema takes, and what came instead.
      return `expected ${expected(schema)}, ${got}`;
  }
}

/** What a schema accepts, in words: `a number greater than 0`, `"kv:read", "kv:write" or …`. */
export function expected(schema: TSchema): string {
  if (Array.isArray(schema.anyOf)) {
    const options = schema.anyOf as TSchema[];
    if (options.length > 0 && options.every((option) => 'const' in option)) {
      return `one of ${options.map((option) => JSON.stringify(option.const)).join(', ')}`;
    }
    return options.map(expected).join(' or ');
  }
  if ('const' in schema) return JSON.stringify(schema.const);
  switch (schema.type) {
    case 'number':
      return `a finite number${range(schema)}`;
    case 'integer':
      return `an integer${range(schema)}`;
    case 'string':
      if (schema.pattern !== undefined) return schema.description ?? `a string matching ${schema.pattern}`;
      return `a string${length(schema)}`;
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    case 'array':
      return 'an array';
    case 'object':
      return 'a JSON object';
    default:
      return 'any JSON value';
  }
}

function range(schema: TSchema): string {
  const low =
    schema.exclusiveMinimum !== undefined
      ? `greater than ${schema.exclusiveMinimum}`
      : schema.minimum !== undefined
        ? `at least ${schema.minimum}`
        : undefined;
  const high =
    schema.exclusiveMaximum !== undefined
      ? `less than ${schema.exclusiveMaximum}`
      : schema.maximum !== undefined
        ? `at most ${schema.maximum}`
        : undefined;
  const parts = [low, high].filter((part) => part !== undefined);
  return parts.length > 0 ? ` ${parts.join(' and ')}` : '';
}

function length(schema: TSchema): string {
  const { minLength: min, maxLength: max } = schema;
  if (min !== undefined && max !== undefined) return ` of ${min}–${max} characters`;
  if (max !== undefined) return ` of at most ${max} characters`;
  if (min !== undefined) return ` of at least ${min} characters`;
  return '';
}

/** The value that came, for a message: short strings quoted (so a wrong scope shows), else its type. */
function shown(value: unknown): string {
  if (typeof value === 'string') {
    return value.length <= 64 && value.isWellFormed() ? JSON.stringify(value) : 'a string';
  }
  return describe(value);
}
