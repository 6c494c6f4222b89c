import { describe, expect, it } from 'vitest';
import { PayloadTooLargeError, ValidationError } from '../../lib/errors.js';
import { MAX_GLOB_STARS, MAX_GLOBS_PER_TOKEN, MAX_NAME_BYTES } from '../../lib/limits.js';
import {
  checkDelay,
  checkGlobs,
  checkInt,
  checkName,
  checkOptions,
  checkTtl,
  describe as describeValue,
  serializeJson,
  serializeJsonObject,
} from '../../lib/storage/validate.js';

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).field;
  }
  throw new Error('expected a ValidationError');
}

describe('checkName', () => {
  it('accepts 1–255 bytes of UTF-8', () => {
    expect(checkName('key', 'a')).toBe('a');
    expect(checkName('key', 'x'.repeat(255))).toHaveLength(255);
    expect(checkName('key', 'é'.repeat(127))).toHaveLength(127); // 254 bytes
    expect(checkName('key', "'; DROP TABLE kv_store; --")).toBe("'; DROP TABLE kv_store; --");
    expect(checkName('key', '{tag}/a b:c')).toBe('{tag}/a b:c');
  });

  it('counts bytes, not characters', () => {
    expect(() => checkName('key', 'é'.repeat(128))).toThrow(/256 bytes/);
    expect(() => checkName('key', '😀'.repeat(64))).toThrow(/256 bytes/);
    expect(() => checkName('key', 'x'.repeat(256))).toThrow(/limit is 255/);
  });

  it('refuses empty, non-strings, control characters and lone surrogates, naming the field', () => {
    expect(fieldOf(() => checkName('queue', ''))).toBe('queue');
    expect(fieldOf(() => checkName('queue', 42))).toBe('queue');
    for (const bad of ['a\nb', 'a\u0000', 'a\u007f', 'a\u0085b', '\ud800x']) {
      expect(() => checkName('channel', bad)).toThrow(ValidationError);
    }
  });
});

describe('checkTtl', () => {
  it('answers whole milliseconds, at least 1', () => {
    expect(checkTtl('ttl', 1)).toBe(1000);
    expect(checkTtl('ttl', 0.25)).toBe(250);
    expect(checkTtl('ttl', 0.0001)).toBe(1);
    expect(checkTtl('ttl', 1.0005)).toBe(1001);
  });

  it('refuses zero, negative, NaN, Infinity, strings and over ten years', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5', null, 315_360_001]) {
      expect(fieldOf(() => checkTtl('options.ttl', bad))).toBe('options.ttl');
    }
  });
});

describe('numbers', () => {
  it('checkInt bounds and integrality', () => {
    expect(checkInt('max', 100, 1, 100)).toBe(100);
    expect(() => checkInt('max', 101, 1, 100)).toThrow(/between 1 and 100/);
    expect(() => checkInt('max', 0, 1, 100)).toThrow(ValidationError);
    expect(() => checkInt('max', 1.5, 1, 100)).toThrow(/integer/);
  });

  it('checkDelay allows zero and refuses negatives', () => {
    expect(checkDelay('delay', 0, 10)).toBe(0);
    expect(checkDelay('delay', 1.5, 10)).toBe(1500);
    expect(() => checkDelay('delay', -1, 10)).toThrow(ValidationError);
    expect(() => checkDelay('delay', 11, 10)).toThrow(ValidationError);
  });
});

describe('checkOptions', () => {
  it('names the unknown option and lists the allowed ones', () => {
    expect(() => checkOptions('options', { tll: 5 }, ['ttl', 'nx'])).toThrow(
      'options.tll: unknown option (allowed: ttl, nx)',
    );
    expect(checkOptions('options', undefined, ['ttl'])).toEqual({});
    expect(fieldOf(() => checkOptions('options', 'ttl', ['ttl']))).toBe('options');
    expect(fieldOf(() => checkOptions('options', [1], ['ttl']))).toBe('options');
  });
});

describe('serializeJson', () => {
  it('serialises every JSON type', () => {
    const value = { a: [1, 'two', null, true, { b: -0.5 }], 'ü😀': '' };
    expect(JSON.parse(serializeJson('value', value, 1024))).toEqual(value);
    expect(serializeJson('value', null, 10)).toBe('null');
    expect(serializeJson('value', false, 10)).toBe('false');
    expect(serializeJson('value', 0, 10)).toBe('0');
  });

  it('names the path of what is not JSON', () => {
    const cases: [unknown, string][] = [
      [undefined, 'value'],
      [() => 1, 'value'],
      [10n, 'value'],
      [Symbol('s'), 'value'],
      [Number.NaN, 'value'],
      [{ a: { b: [1, Number.POSITIVE_INFINITY] } }, 'value.a.b[1]'],
      [{ when: new Date() }, 'value.when'],
      [{ m: new Map() }, 'value.m'],
      [[new (class Thing {})()], 'value[0]'],
      [{ u: undefined }, 'value.u'],
      ['\ud800', 'value'],
    ];
    for (const [bad, path] of cases) expect(fieldOf(() => serializeJson('value', bad, 1024))).toBe(path);
  });

  it('refuses arrays with properties besides their items (toJSON, tags)', () => {
    for (const extra of [() => undefined, () => 10n, () => new Date(), 'tag']) {
      const list = Object.assign([1, 2], { toJSON: extra });
      expect(fieldOf(() => serializeJson('value', { list }, 1024))).toBe('value.list');
    }
    const tagged = Object.assign([1], { note: 'x' });
    expect(fieldOf(() => serializeJson('payload', tagged, 1024))).toBe('payload');
  });

  it('refuses cycles but accepts shared subtrees', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => serializeJson('value', cyclic, 1024)).toThrow(/circular/);
    const shared = { x: 1 };
    expect(serializeJson('value', [shared, shared], 1024)).toBe('[{"x":1},{"x":1}]');
  });

  it('refuses deep nesting without overflowing the stack', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expect(() => serializeJson('value', deep, 1 << 20)).toThrow(/nested deeper/);
  });

  it('measures size in UTF-8 bytes', () => {
    expect(serializeJson('value', 'a'.repeat(98), 100)).toHaveLength(100);
    expect(() => serializeJson('value', 'a'.repeat(99), 100)).toThrow(PayloadTooLargeError);
    expect(() => serializeJson('value', 'é'.repeat(50), 100)).toThrow(/102 bytes/);
    try {
      serializeJson('payload', 'x'.repeat(200), 100);
    } catch (error) {
      expect((error as PayloadTooLargeError).code).toBe('payload_too_large');
      expect((error as PayloadTooLargeError).status).toBe(413);
    }
  });

  it('serializeJsonObject wants an object', () => {
    expect(serializeJsonObject('data', { a: 1 }, 100)).toBe('{"a":1}');
    expect(fieldOf(() => serializeJsonObject('data', [1], 100))).toBe('data');
    expect(fieldOf(() => serializeJsonObject('data', 'x', 100))).toBe('data');
  });
});

describe('checkGlobs (token resources)', () => {
  const refusal = (value: unknown) => {
    try {
      checkGlobs('resources', value);
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      return (error as ValidationError).message;
    }
    throw new Error('expected a ValidationError');
  };

  it('accepts up to the bounds', () => {
    const stars = `a${'*b'.repeat(MAX_GLOB_STARS)}`;
    const longest = `${'x'.repeat(MAX_NAME_BYTES - 1)}*`;
    const many = Array.from({ length: MAX_GLOBS_PER_TOKEN }, (_, i) => `r-${i}-*`);
    expect(checkGlobs('resources', [stars, longest])).toEqual([stars, longest]);
    expect(checkGlobs('resources', many)).toHaveLength(MAX_GLOBS_PER_TOKEN);
  });

  it('refuses past each bound, naming the pattern and the bound', () => {
    expect(refusal([`team-a-${'a*'.repeat(12)}!`])).toBe(
      `resources[0]: has 12 '*'; a pattern may have at most ${MAX_GLOB_STARS}`,
    );
    expect(refusal(['ok-*', '*'.repeat(MAX_GLOB_STARS + 1)])).toMatch(/^resources\[1\]: has 9 '\*'/);
    expect(refusal([`${'x'.repeat(MAX_NAME_BYTES)}*`])).toBe(
      `resources[0]: is ${MAX_NAME_BYTES + 1} bytes of UTF-8; the limit is ${MAX_NAME_BYTES}`,
    );
    expect(refusal(Array.from({ length: MAX_GLOBS_PER_TOKEN + 1 }, (_, i) => `r-${i}`))).toBe(
      `resources: at most ${MAX_GLOBS_PER_TOKEN} patterns, got ${MAX_GLOBS_PER_TOKEN + 1}`,
    );
    expect(refusal([])).toBe('resources: expected a non-empty array of glob patterns, got an array');
    expect(refusal(['ok', 7])).toBe('resources[1]: expected a string, got the number 7');
  });
});

describe('describe (the "got …" of messages)', () => {
  it('says what came in plain words', () => {
    expect(describeValue(undefined)).toBe('nothing (the field is missing)');
    expect(describeValue(Number.POSITIVE_INFINITY)).toBe('a number too large to represent (Infinity)');
    expect(describeValue(Number.NEGATIVE_INFINITY)).toBe('a number too large to represent (-Infinity)');
    expect(describeValue(Number.NaN)).toBe('NaN (not a number)');
    expect(describeValue(-0)).toBe('the number 0');
    expect(describeValue('x')).toBe('a string');
    expect(describeValue([])).toBe('an array');
  });

  it('a missing name, an infinite ttl is not finite', () => {
    expect(() => checkName('channel', undefined)).toThrow(
      'channel: expected a string, got nothing (the field is missing)',
    );
    expect(() => serializeJson('message', { n: Number.POSITIVE_INFINITY }, 1024)).toThrow(
      'message.n: expected a finite JSON number, got a number too large to represent (Infinity)',
    );
    expect(() => checkTtl('ttl', Number.POSITIVE_INFINITY)).toThrow(
      'ttl: expected a finite number of seconds, got a number too large to represent (Infinity)',
    );
  });
});
