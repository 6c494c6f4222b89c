/**
 * How the migration compares records (lib/data-migration/records.ts): values as JSON without losing
 * digits, times within a tolerance, audit entries by content.
 */
import { describe, expect, it } from 'vitest';
import {
  auditContentId,
  canonicalJson,
  compareRecords,
  type KvRecord,
} from '../../lib/data-migration/records.js';

describe('canonicalJson', () => {
  it('sorts keys, drops whitespace and writes escapes and numbers one way', () => {
    expect(canonicalJson('{"b": 1, "a": [1.0, "x\\u0041", null, true]}')).toBe(
      '{"a":[1,"xA",null,true],"b":1}',
    );
    expect(canonicalJson('{"z":{"y":[],"x":{}}}')).toBe('{"z":{"x":{},"y":[]}}');
    expect(canonicalJson('1e2')).toBe('100');
    expect(canonicalJson('"é"')).toBe(canonicalJson('"\\u00e9"'));
    expect(canonicalJson('{"a":1,"a":2}')).toBe('{"a":2}');
  });

  it('keeps the digits a double would round: ids beyond 2^53 stay distinct', () => {
    expect(canonicalJson('9007199254740993')).not.toBe(canonicalJson('9007199254740992'));
    expect(canonicalJson('{"snowflake":1234567890123456789}')).not.toBe(
      canonicalJson('{"snowflake":1234567890123456800}'),
    );
    expect(canonicalJson('3.141592653589793238')).toBe('3.141592653589793238');
    expect(canonicalJson('3.141592653589793')).toBe('3.141592653589793');
  });

  it('answers text that is not JSON as it is', () => {
    expect(canonicalJson('not json')).toBe('not json');
    expect(canonicalJson('[1,]')).toBe('[1,]');
    expect(canonicalJson('{"a":1} x')).toBe('{"a":1} x');
  });
});

describe('compareRecords', () => {
  const kv = (value: string, expiresAtMs: number | null): KvRecord => ({ key: 'k', value, expiresAtMs });

  it('tells a changed value from a drifted expiry, within the tolerance', () => {
    expect(compareRecords('kv', kv('{"a":1}', 1000), kv('{ "a": 1 }', 1500), 1000)).toEqual({ kind: 'same' });
    expect(compareRecords('kv', kv('1', 1000), kv('2', 1000), 1000)).toEqual({
      kind: 'changed',
      field: 'value',
    });
    expect(compareRecords('kv', kv('1', 1000), kv('1', 5000), 1000)).toEqual({
      kind: 'ttl',
      field: 'expiresAtMs',
      driftMs: 4000,
    });
    expect(compareRecords('kv', kv('1', null), kv('1', 5000), 1000)).toMatchObject({ kind: 'ttl' });
    expect(compareRecords('kv', kv('9007199254740993', null), kv('9007199254740992', null), 0)).toMatchObject(
      {
        kind: 'changed',
      },
    );
  });

  it('matches audit entries by content, whatever their ids and key order', () => {
    const entry = {
      sourceId: '1-0',
      atMs: 1,
      identity: 'i',
      action: 'a',
      resource: null,
      correlationId: null,
      outcome: 'ok' as const,
      details: '{"b":1,"a":2}',
    };
    expect(auditContentId(entry)).toBe(
      auditContentId({ ...entry, sourceId: '99', details: '{"a":2,"b":1}' }),
    );
    expect(auditContentId(entry)).not.toBe(auditContentId({ ...entry, action: 'b' }));
  });
});
