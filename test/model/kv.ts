/**
 * The kv store against a model: four keys, values that are positive integers or strings, TTLs
 * short (they pass within a run) or long, `nx`/`xx`, `incr`, `expire`, `ttl`, `getMany`.
 */
import fc from 'fast-check';
import { ConflictError } from '../../lib/errors.js';
import type { Json, Storage } from '../../lib/storage/types.js';
import {
  after,
  type Deadline,
  Divergence,
  LONG_S,
  type Outcome,
  phase,
  SHORT_S,
  sleep,
  timed,
  WAIT_MS,
  type Window,
} from './time.js';

type Ttl = 'short' | 'long';
export type KvCommand =
  | { t: 'set'; k: number; v: number | string; ttl?: Ttl; only?: 'nx' | 'xx' }
  | { t: 'get'; k: number }
  | { t: 'getMany' }
  | { t: 'delete'; k: number }
  | { t: 'exists'; k: number }
  | { t: 'expire'; k: number; ttl: Ttl | null }
  | { t: 'ttl'; k: number }
  | { t: 'incr'; k: number; by: number }
  | { t: 'wait' };

const KEYS = 4;
const key = fc.nat({ max: KEYS - 1 });
const ttl = fc.constantFrom<Ttl>('short', 'long');
// Integers start at 1 and incr adds 1–5, so `value + by` never equals `by`: an incr answers
// which of "the key was live" and "it had expired" happened.
const value = fc.oneof(fc.integer({ min: 1, max: 50 }), fc.constantFrom('a', 'b'));

export const kvCommand: fc.Arbitrary<KvCommand> = fc.oneof(
  {
    arbitrary: fc.record({ t: fc.constant('set'), k: key, v: value }, { requiredKeys: ['t', 'k', 'v'] }),
    weight: 2,
  },
  {
    arbitrary: fc.record(
      { t: fc.constant('set'), k: key, v: value, ttl, only: fc.constantFrom('nx', 'xx') },
      { requiredKeys: ['t', 'k', 'v'] },
    ),
    weight: 3,
  },
  fc.record({ t: fc.constant('get'), k: key }),
  fc.record({ t: fc.constant('getMany') }),
  fc.record({ t: fc.constant('delete'), k: key }),
  fc.record({ t: fc.constant('exists'), k: key }),
  fc.record({ t: fc.constant('expire'), k: key, ttl: fc.option(ttl, { nil: null }) }),
  fc.record({ t: fc.constant('ttl'), k: key }),
  { arbitrary: fc.record({ t: fc.constant('incr'), k: key, by: fc.integer({ min: 1, max: 5 }) }), weight: 2 },
  fc.record({ t: fc.constant('wait') }),
) as fc.Arbitrary<KvCommand>;

interface Entry {
  value: Json;
  /** null: never expires. */
  expires: Deadline | null;
}

const seconds = (t: Ttl) => (t === 'short' ? SHORT_S : LONG_S);

/** Runs `commands` on `storage` (keys under `prefix`) and on the model; throws a Divergence at the first difference. */
export async function runKv(storage: Storage, prefix: string, commands: readonly KvCommand[]): Promise<void> {
  const model = new Map<number, Entry>();
  const name = (k: number) => `${prefix}k${k}`;

  /** Whether key `k` is live for a call in `window`; an entry surely expired is dropped. */
  const status = (k: number, window: Window): 'live' | 'absent' | 'unsure' => {
    const entry = model.get(k);
    if (!entry) return 'absent';
    if (entry.expires === null) return 'live';
    const p = phase(entry.expires, window);
    if (p === 'passed') {
      model.delete(k);
      return 'absent';
    }
    return p === 'pending' ? 'live' : 'unsure';
  };
  /** The real answer says whether an unsure key was live: keep it, or drop it. */
  const learn = (k: number, live: boolean) => {
    if (!live) model.delete(k);
  };

  for (const command of commands) {
    const fail = (message: string): never => {
      throw new Divergence(command, message);
    };
    const expectOk = <T>(outcome: Outcome<T>): T => {
      if (!outcome.ok) return fail(`failed with ${String(outcome.error)}`);
      return outcome.value;
    };
    switch (command.t) {
      case 'wait':
        await sleep(WAIT_MS);
        break;
      case 'set': {
        const { k, v } = command;
        const options = {
          ...(command.ttl ? { ttl: seconds(command.ttl) } : {}),
          ...(command.only ? { [command.only]: true } : {}),
        };
        const r = await timed(() => storage.kv.set(name(k), v, options));
        const written = expectOk(r);
        const st = status(k, r.window);
        const wanted = command.only === 'nx' ? st !== 'live' : command.only === 'xx' ? st !== 'absent' : true;
        if (st !== 'unsure' || command.only === undefined) {
          if (written !== wanted) fail(`answered ${written}, the model says ${wanted} (key ${st})`);
        } else learn(k, command.only === 'nx' ? !written : written);
        if (written)
          model.set(k, {
            value: v,
            expires: command.ttl ? after(r.window, seconds(command.ttl) * 1000) : null,
          });
        break;
      }
      case 'get':
      case 'exists': {
        const { k } = command;
        const r = await timed(() =>
          command.t === 'get' ? storage.kv.get(name(k)) : storage.kv.exists(name(k)),
        );
        const got = expectOk(r) as Json | undefined | boolean;
        const st = status(k, r.window);
        const present = command.t === 'get' ? got !== undefined : got === true;
        if (st === 'unsure') learn(k, present);
        else if (present !== (st === 'live'))
          fail(`answered ${JSON.stringify(got)}, the model says the key is ${st}`);
        if (command.t === 'get' && present && JSON.stringify(got) !== JSON.stringify(model.get(k)?.value)) {
          fail(`answered ${JSON.stringify(got)}, the model holds ${JSON.stringify(model.get(k)?.value)}`);
        }
        break;
      }
      case 'getMany': {
        const keys = Array.from({ length: KEYS }, (_, k) => k);
        const r = await timed(() => storage.kv.getMany(keys.map(name)));
        const got = expectOk(r);
        for (const k of keys) {
          const st = status(k, r.window);
          const present = got[k] !== undefined;
          if (st === 'unsure') learn(k, present);
          else if (present !== (st === 'live'))
            fail(`key ${k}: answered ${JSON.stringify(got[k])}, the model says ${st}`);
          if (present && JSON.stringify(got[k]) !== JSON.stringify(model.get(k)?.value)) {
            fail(
              `key ${k}: answered ${JSON.stringify(got[k])}, the model holds ${JSON.stringify(model.get(k)?.value)}`,
            );
          }
        }
        break;
      }
      case 'delete': {
        const r = await timed(() => storage.kv.delete(name(command.k)));
        const deleted = expectOk(r);
        const st = status(command.k, r.window);
        if (st !== 'unsure' && deleted !== (st === 'live'))
          fail(`answered ${deleted}, the model says the key is ${st}`);
        model.delete(command.k);
        break;
      }
      case 'expire': {
        const { k } = command;
        const r = await timed(() =>
          storage.kv.expire(name(k), command.ttl === null ? null : seconds(command.ttl)),
        );
        const changed = expectOk(r);
        const st = status(k, r.window);
        if (st === 'unsure') learn(k, changed);
        else if (changed !== (st === 'live')) fail(`answered ${changed}, the model says the key is ${st}`);
        const entry = model.get(k);
        if (changed && entry)
          entry.expires = command.ttl === null ? null : after(r.window, seconds(command.ttl) * 1000);
        break;
      }
      case 'ttl': {
        const { k } = command;
        const r = await timed(() => storage.kv.ttl(name(k)));
        const left = expectOk(r);
        const st = status(k, r.window);
        if (st === 'unsure') learn(k, left !== undefined);
        else if ((left !== undefined) !== (st === 'live'))
          fail(`answered ${left}, the model says the key is ${st}`);
        const entry = model.get(k);
        if (left === undefined || !entry) break;
        if (entry.expires === null) {
          if (left !== null) fail(`answered ${left} s left, the model says it never expires`);
        } else {
          if (left === null) fail('answered null (never expires), the model has a deadline');
          const lo = (entry.expires.min - r.window.end) / 1000;
          const hi = (entry.expires.max - r.window.start) / 1000;
          if (left! < lo - 0.001 || left! > hi + 0.001)
            fail(`answered ${left} s left, the model says ${lo}–${hi}`);
        }
        break;
      }
      case 'incr': {
        const { k, by } = command;
        const r = await timed(() => storage.kv.incr(name(k), by));
        const st = status(k, r.window);
        const entry = model.get(k);
        const old = entry?.value;
        const numeric = typeof old === 'number';
        // What each possibility answers: the live key's sum (or a conflict), or a fresh count.
        const ifLive: Outcome<number> = numeric
          ? { ok: true, value: (old as number) + by }
          : { ok: false, error: new ConflictError('not an integer') };
        const ifAbsent: Outcome<number> = { ok: true, value: by };
        const same = (a: Outcome<number>) =>
          a.ok ? r.ok && r.value === a.value : !r.ok && r.error instanceof ConflictError;
        const wasLive =
          st === 'live'
            ? true
            : st === 'absent'
              ? false
              : same(ifLive)
                ? true
                : same(ifAbsent)
                  ? false
                  : undefined;
        if (wasLive === undefined || !same(wasLive ? ifLive : ifAbsent)) {
          fail(
            `answered ${r.ok ? r.value : String(r.error)}, the model says the key is ${st} holding ${JSON.stringify(old)}`,
          );
        }
        if (wasLive && numeric && entry) entry.value = (old as number) + by;
        if (!wasLive) model.set(k, { value: by, expires: null });
        break;
      }
    }
  }
}
