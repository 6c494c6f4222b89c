/**
 * The sessions store against a model: three clusters, two correlation ids, TTLs short (they pass
 * within a run) or long; keep-alives with and without a TTL, ends, and every lookup.
 */
import fc from 'fast-check';
import type { Session, Storage } from '../../lib/storage/types.js';
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
export type SessionCommand =
  | { t: 'create'; c: number; corr?: number; user?: boolean; ttl: Ttl }
  | { t: 'get'; s: number }
  | { t: 'keepAlive'; s: number; ttl?: Ttl }
  | { t: 'end'; s: number }
  | { t: 'byCluster'; c: number }
  | { t: 'byCorrelation'; corr: number }
  | { t: 'activeClusters' }
  | { t: 'isClusterActive'; c: number }
  | { t: 'wait' };

const CLUSTERS = 3;
const cluster = fc.nat({ max: CLUSTERS - 1 });
const correlation = fc.nat({ max: 1 });
const ttl = fc.constantFrom<Ttl>('short', 'long');
/** A session by its place among those created so far (taken modulo their number), or an unknown id. */
const session = fc.nat({ max: 20 });

export const sessionCommand: fc.Arbitrary<SessionCommand> = fc.oneof(
  {
    arbitrary: fc.record(
      { t: fc.constant('create'), c: cluster, corr: correlation, user: fc.boolean(), ttl },
      { requiredKeys: ['t', 'c', 'ttl'] },
    ),
    weight: 3,
  },
  fc.record({ t: fc.constant('get'), s: session }),
  fc.record({ t: fc.constant('keepAlive'), s: session, ttl }, { requiredKeys: ['t', 's'] }),
  fc.record({ t: fc.constant('end'), s: session }),
  fc.record({ t: fc.constant('byCluster'), c: cluster }),
  fc.record({ t: fc.constant('byCorrelation'), corr: correlation }),
  fc.record({ t: fc.constant('activeClusters') }),
  fc.record({ t: fc.constant('isClusterActive'), c: cluster }),
  fc.record({ t: fc.constant('wait') }),
) as fc.Arbitrary<SessionCommand>;

interface ModelSession {
  id: string;
  c: number;
  corr: number | undefined;
  user: string | null;
  /** Seconds it was created with: the default of a keep-alive. */
  ttl: number;
  expires: Deadline;
  ended: boolean;
}

const seconds = (t: Ttl) => (t === 'short' ? SHORT_S : LONG_S);
const ms = (iso: string) => new Date(iso).getTime();

export async function runSessions(
  storage: Storage,
  prefix: string,
  commands: readonly SessionCommand[],
): Promise<void> {
  const sessions: ModelSession[] = [];
  const clusterId = (c: number) => `${prefix}c${c}`;
  const correlationId = (x: number) => `${prefix}x${x}`;
  /** The session a command names: one created earlier, or (with none, or 1 in 8) an unknown id. */
  const pick = (s: number): ModelSession | undefined =>
    sessions.length === 0 || s % 8 === 7 ? undefined : sessions[s % sessions.length];
  const status = (m: ModelSession, window: Window): 'live' | 'gone' | 'unsure' => {
    if (m.ended) return 'gone';
    const p = phase(m.expires, window);
    if (p === 'passed') m.ended = true;
    return p === 'pending' ? 'live' : p === 'passed' ? 'gone' : 'unsure';
  };
  const learn = (m: ModelSession, live: boolean) => {
    if (!live) m.ended = true;
  };

  for (const command of commands) {
    const fail = (message: string): never => {
      throw new Divergence(command, message);
    };
    const expectOk = <T>(outcome: Outcome<T>): T => {
      if (!outcome.ok) return fail(`failed with ${String(outcome.error)}`);
      return outcome.value;
    };
    /** The fields the model knows, and an expiry inside its bounds. */
    const matches = (got: Session, m: ModelSession) => {
      const want = {
        sessionId: m.id,
        clusterId: clusterId(m.c),
        userId: m.user,
        correlationId: m.corr === undefined ? null : correlationId(m.corr),
      };
      for (const [field, value] of Object.entries(want)) {
        if (got[field as keyof Session] !== value)
          fail(
            `${field} is ${JSON.stringify(got[field as keyof Session])}, the model has ${JSON.stringify(value)}`,
          );
      }
      const at = ms(got.expiresAt);
      if (at < m.expires.min - 1 || at > m.expires.max + 1) {
        fail(
          `expiresAt ${got.expiresAt} is outside the model's ${new Date(m.expires.min).toISOString()}–${new Date(m.expires.max).toISOString()}`,
        );
      }
    };
    /** A list of live sessions: every surely live one, nothing surely gone, oldest first. */
    const checkList = (got: Session[], candidates: ModelSession[], window: Window, what: string) => {
      const ids = new Set(got.map((s) => s.sessionId));
      for (const m of candidates) {
        const st = status(m, window);
        if (st === 'live' && !ids.has(m.id)) fail(`${what} misses live session ${m.id}`);
        if (st === 'gone' && ids.has(m.id))
          fail(`${what} answers session ${m.id}, which the model says is gone`);
        if (st === 'unsure') learn(m, ids.has(m.id));
      }
      const known = new Set(candidates.map((m) => m.id));
      for (const s of got)
        if (!known.has(s.sessionId)) fail(`${what} answers a session the model never had: ${s.sessionId}`);
      for (let i = 1; i < got.length; i++) {
        if (ms(got[i]!.createdAt) < ms(got[i - 1]!.createdAt)) fail(`${what} is not oldest first`);
      }
      for (const s of got) matches(s, candidates.find((m) => m.id === s.sessionId)!);
    };

    switch (command.t) {
      case 'wait':
        await sleep(WAIT_MS);
        break;
      case 'create': {
        const user = command.user ? `${prefix}u` : null;
        const r = await timed(() =>
          storage.sessions.create({
            clusterId: clusterId(command.c),
            ...(command.corr === undefined ? {} : { correlationId: correlationId(command.corr) }),
            ...(user === null ? {} : { userId: user }),
            ttl: seconds(command.ttl),
          }),
        );
        const got = expectOk(r);
        const m: ModelSession = {
          id: got.sessionId,
          c: command.c,
          corr: command.corr,
          user,
          ttl: seconds(command.ttl),
          expires: after(r.window, seconds(command.ttl) * 1000),
          ended: false,
        };
        matches(got, m);
        sessions.push(m);
        break;
      }
      case 'get':
      case 'keepAlive':
      case 'end': {
        const m = pick(command.s);
        const id = m?.id ?? `${prefix}unknown`;
        const r = await timed<Session | boolean | undefined>(() =>
          command.t === 'get'
            ? storage.sessions.get(id)
            : command.t === 'end'
              ? storage.sessions.end(id)
              : storage.sessions.keepAlive(id, command.ttl === undefined ? undefined : seconds(command.ttl)),
        );
        const got = expectOk(r);
        const present = command.t === 'end' ? got === true : got !== undefined;
        if (!m) {
          if (present) fail(`answered ${JSON.stringify(got)} for an unknown session`);
          break;
        }
        const st = status(m, r.window);
        if (st === 'unsure') learn(m, present);
        else if (present !== (st === 'live'))
          fail(`answered ${JSON.stringify(got)}, the model says the session is ${st}`);
        if (!present) break;
        if (command.t === 'end') m.ended = true;
        if (command.t === 'keepAlive')
          m.expires = after(r.window, (command.ttl ? seconds(command.ttl) : m.ttl) * 1000);
        if (command.t !== 'end') matches(got as Session, m);
        break;
      }
      case 'byCluster':
      case 'byCorrelation': {
        const r = await timed(() =>
          command.t === 'byCluster'
            ? storage.sessions.byCluster(clusterId(command.c))
            : storage.sessions.byCorrelation(correlationId(command.corr)),
        );
        const got = expectOk(r);
        const candidates = sessions.filter((m) =>
          command.t === 'byCluster' ? m.c === command.c : m.corr === command.corr,
        );
        checkList(got, candidates, r.window, command.t);
        break;
      }
      case 'activeClusters': {
        const r = await timed(() => storage.sessions.activeClusters());
        const got = expectOk(r).filter((id) => id.startsWith(prefix));
        for (let c = 0; c < CLUSTERS; c++) {
          const states = sessions.filter((m) => m.c === c).map((m) => status(m, r.window));
          const listed = got.includes(clusterId(c));
          if (states.includes('live') && !listed) fail(`misses cluster ${c}, which has a live session`);
          if (!states.includes('live') && !states.includes('unsure') && listed)
            fail(`lists cluster ${c}, which has none`);
        }
        if ([...got].sort().join() !== got.join()) fail(`is not sorted: ${JSON.stringify(got)}`);
        break;
      }
      case 'isClusterActive': {
        const r = await timed(() => storage.sessions.isClusterActive(clusterId(command.c)));
        const active = expectOk(r);
        const states = sessions.filter((m) => m.c === command.c).map((m) => status(m, r.window));
        if (states.includes('live') && !active) fail('answered false with a live session');
        if (!states.includes('live') && !states.includes('unsure') && active)
          fail('answered true without a live session');
        // false with unsure sessions: none of them was live.
        if (!active)
          for (const m of sessions) if (m.c === command.c && status(m, r.window) === 'unsure') m.ended = true;
        break;
      }
    }
  }
}
